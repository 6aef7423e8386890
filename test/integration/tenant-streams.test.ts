/**
 * Issue 22: no platform-wide sequence on what a tenant reads. A JetStream delivery carries its
 * stream's sequence, and the event stream counts every tenant's events; a tenant stream
 * (src/events/tenant-streams.ts) holds one tenant's events, so its sequence runs 1, 2, 3… with no
 * gaps where other tenants' events fell, and the header of a sourced message names no event-stream
 * sequence either. On the real NATS server of this run, with the real service-fs command.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { AckPolicy, connect, type JsMsg, type NatsConnection } from 'nats';
import { runServiceFs, type CliIo } from '../../src/cli/service-fs';
import { loadConfig } from '../../src/config/config';
import { deleteStreams } from '../../src/devstack/nats-streams';
import { ensureEventStream, eventStreamLimits } from '../../src/events/jetstream-stream';
import { startTenantStreamKeeper, tenantStagingStreamName, tenantStreamName } from '../../src/events/tenant-streams';
import { createLogger } from '../../src/logging/logger';
import type { AuditEventType } from '../../src/shared/audit-event-types';
import { subjectFor } from '../../src/shared/event-subjects';
import { testEnv, uniqueName } from '../helpers/test-env';

jest.setTimeout(60_000);

const A = 'acme-corp';
const B = 'globex';
const C = 'initech';
const D = 'dunder-mifflin';

let nc: NatsConnection;
const streams: string[] = [];

function deployment(): { main: string; prefix: string; env: Record<string, string> } {
  const main = uniqueName('TSTREAMS').replace(/-/g, '_').toUpperCase();
  const prefix = main.toLowerCase();
  streams.push(main, ...[A, B, C, D].flatMap((t) => [tenantStreamName(main, t), tenantStagingStreamName(main, t)]));
  const env = {
    NATS_URL: testEnv().natsUrl,
    NATS_STREAM: main,
    NATS_SUBJECT_PREFIX: prefix,
    NATS_STREAM_MAX_AGE_HOURS: '48',
    NATS_STREAM_MAX_BYTES: String(8 * 1024 ** 2),
    NATS_STREAM_DISCARD: 'old',
    NATS_STREAM_REPLICAS: '1',
  };
  return { main, prefix, env };
}

async function serviceFs(env: Record<string, string>, ...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (text) => (stdout += text), stderr: (text) => (stderr += text) };
  const code = await runServiceFs(argv, env, io);
  return { code, stdout, stderr };
}

const TYPES: readonly AuditEventType[] = ['TENANT_CREATED', 'TOKEN_ISSUED', 'VM_SPAWN_REQUESTED', 'VM_RUNNING', 'VM_DESTROYED'];
const typeOf = (tenantSeq: number): AuditEventType => TYPES[tenantSeq % TYPES.length] ?? 'VM_RUNNING';

/** Publishes events as the relay does: one per (tenant, tenant_seq), interleaved in the order given. */
async function publish(prefix: string, owners: Array<string | null>): Promise<void> {
  const js = nc.jetstream();
  for (const owner of owners) {
    const seq = (counts.get(`${prefix}/${owner}`) ?? 0) + 1;
    counts.set(`${prefix}/${owner}`, seq);
    const body = { event_id: `${prefix}-${owner ?? '_platform'}-${seq}`, event_type: typeOf(seq), tenant_id: owner, tenant_seq: String(seq) };
    await js.publish(subjectFor(prefix, typeOf(seq), owner), JSON.stringify(body), { msgID: body.event_id });
  }
}
const counts = new Map<string, number>();

async function waitFor<T>(probe: () => Promise<T>, done: (value: T) => boolean, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await sleep(100);
  }
}

async function messageCount(stream: string): Promise<number> {
  return (await (await nc.jetstreamManager()).streams.info(stream)).state.messages;
}

/** Every message of a stream through a JetStream consumer, as a tenant reads them. */
async function readAll(stream: string): Promise<JsMsg[]> {
  const jsm = await nc.jetstreamManager();
  const name = uniqueName('reader');
  await jsm.consumers.add(stream, { name, ack_policy: AckPolicy.Explicit });
  const messages: JsMsg[] = [];
  const batch = await (await nc.jetstream().consumers.get(stream, name)).fetch({ max_messages: 1000, expires: 1500 });
  for await (const m of batch) {
    messages.push(m);
    m.ack();
  }
  await jsm.consumers.delete(stream, name);
  return messages;
}

beforeAll(async () => {
  nc = await connect({ servers: testEnv().natsUrl });
});

afterAll(async () => {
  await nc.close();
  await deleteStreams(testEnv().natsUrl, streams);
});

describe('per-tenant event streams', () => {
  test("when tenants' events interleave in the event stream, then a consumer of A's stream gets exactly A's, in order, with stream sequences 1..n, and B's stream only B's", async () => {
    const { main, prefix, env } = deployment();
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, main, prefix, eventStreamLimits(loadConfig(env)));
    // Before the tenant streams exist: what a new tenant stream must pick up from the event stream.
    await publish(prefix, [B, A, B, B, C, null, A, B, C, C, A]);
    expect(await serviceFs(env, 'tenant-stream', '--tenant', A)).toEqual({
      code: 0,
      stdout: `ok: created ${main}_T_${A} (from ${main}_TS_${A}, which sources ${main} filtered to ${prefix}.*.*.${A})\n`,
      stderr: '',
    });
    expect((await serviceFs(env, 'tenant-stream', '--tenant', B)).code).toBe(0);
    // After: the stream follows the event stream.
    await publish(prefix, [C, A, B, null, B, A, C, B, B, A]);
    const countA = counts.get(`${prefix}/${A}`)!;
    const countB = counts.get(`${prefix}/${B}`)!;
    await waitFor(
      () => messageCount(tenantStreamName(main, A)),
      (n) => n >= countA,
      "A's stream to catch up",
    );
    await waitFor(
      () => messageCount(tenantStreamName(main, B)),
      (n) => n >= countB,
      "B's stream to catch up",
    );
    await sleep(300); // anything more than expected would have arrived by now

    // In the event stream A's deliveries have gaps (B's and C's events): what the tenant stream hides.
    const fromMain = (await readAll(main)).filter((m) => m.subject.endsWith(`.${A}`)).map((m) => m.info.streamSequence);
    expect(fromMain).toHaveLength(countA);
    expect(fromMain).not.toEqual(fromMain.map((_, i) => i + 1));

    const ownA = await readAll(tenantStreamName(main, A));
    expect(ownA.map((m) => m.subject.split('.').pop())).toEqual(Array(countA).fill(A));
    expect(ownA.map((m) => m.json<{ tenant_seq: string }>().tenant_seq)).toEqual(ownA.map((_, i) => String(i + 1)));
    expect(ownA.map((m) => m.info.streamSequence)).toEqual(ownA.map((_, i) => i + 1));
    // The header a sourced message carries names the staging stream and its sequence: A's own count again.
    expect(ownA.map((m) => m.headers?.get('Nats-Stream-Source').split(' ').slice(0, 2))).toEqual(
      ownA.map((_, i) => [tenantStagingStreamName(main, A), String(i + 1)]),
    );
    expect(ownA.every((m) => !m.headers?.toString().includes(`${main} `))).toBe(true);

    const ownB = await readAll(tenantStreamName(main, B));
    expect(ownB.map((m) => m.subject.split('.').pop())).toEqual(Array(countB).fill(B));
    expect(ownB.map((m) => m.info.streamSequence)).toEqual(ownB.map((_, i) => i + 1));
  });

  test('when the command runs again, then nothing changes and nothing is duplicated; the limits are the event stream’s; --remove deletes both streams, and again is fine', async () => {
    const { main, prefix, env } = deployment();
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, main, prefix, eventStreamLimits(loadConfig(env)));
    await publish(prefix, [A, B, A, C, A]);
    expect((await serviceFs(env, 'tenant-stream', '--tenant', A)).code).toBe(0);
    await waitFor(
      () => messageCount(tenantStreamName(main, A)),
      (n) => n >= 3,
      "A's stream to catch up",
    );
    const again = await serviceFs(env, 'tenant-stream', '--tenant', A);
    expect(again).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^ok: updated ${main}_T_${A} `)) });
    await sleep(500);
    expect(await messageCount(tenantStreamName(main, A))).toBe(3);
    expect((await readAll(tenantStreamName(main, A))).map((m) => m.info.streamSequence)).toEqual([1, 2, 3]);

    const limits = (config: { max_age: number; max_bytes: number; discard: string; num_replicas: number }) => ({
      max_age: config.max_age,
      max_bytes: config.max_bytes,
      discard: config.discard,
      num_replicas: config.num_replicas,
    });
    const mainLimits = limits((await jsm.streams.info(main)).config);
    expect(mainLimits).toEqual({ max_age: 48 * 3_600_000_000_000, max_bytes: 8 * 1024 ** 2, discard: 'old', num_replicas: 1 });
    expect(limits((await jsm.streams.info(tenantStreamName(main, A))).config)).toEqual(mainLimits);
    expect(limits((await jsm.streams.info(tenantStagingStreamName(main, A))).config)).toEqual(mainLimits);

    expect(await serviceFs(env, 'tenant-stream', '--tenant', A, '--remove')).toEqual({
      code: 0,
      stdout: `ok: removed ${main}_T_${A}, ${main}_TS_${A}\n`,
      stderr: '',
    });
    for (const name of [tenantStreamName(main, A), tenantStagingStreamName(main, A)]) await expect(jsm.streams.info(name)).rejects.toThrow(/not found/);
    expect(await messageCount(main)).toBe(5);
    expect(await serviceFs(env, 'tenant-stream', '--tenant', A, '--remove')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^ok: no stream/) });
  });

  test('when the tenant id is not one, or the event stream is missing, then the command refuses (2, 3) and makes nothing', async () => {
    const { main, env } = deployment();
    const badId = await serviceFs(env, 'tenant-stream', '--tenant', 'Acme.Corp');
    expect(badId).toMatchObject({ code: 2, stderr: expect.stringContaining('--tenant must be a tenant id') });
    expect(await serviceFs(env, 'tenant-stream', '--tenant', A)).toMatchObject({
      code: 3,
      stderr: `service-fs: the event stream ${main} does not exist (a worker makes it when it starts)\n`,
    });
    await expect((await nc.jetstreamManager()).streams.info(tenantStreamName(main, A))).rejects.toThrow(/not found/);
  });

  test('when NATS_TENANT_STREAMS is on, then the worker makes a tenant’s stream at its tenant.created event and deletes it at tenant.deleted', async () => {
    const { main, prefix, env } = deployment();
    const config = loadConfig({ ...env, NATS_TENANT_STREAMS: 'on' });
    expect(config.natsTenantStreams).toBe(true);
    expect(loadConfig(env).natsTenantStreams).toBe(false);
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, main, prefix, eventStreamLimits(config));
    const keeper = startTenantStreamKeeper(
      nc,
      { mainStream: main, subjectPrefix: prefix, limits: eventStreamLimits(config) },
      createLogger({ level: 'silent', name: 'test' }),
    );
    try {
      const js = nc.jetstream();
      await js.publish(subjectFor(prefix, 'TENANT_CREATED', D), JSON.stringify({ tenant_id: D }), { msgID: `${main}-created` });
      await publish(prefix, [B, D, B]);
      await waitFor(
        () => messageCount(tenantStreamName(main, D)).catch(() => 0),
        (n) => n === 2,
        "D's stream",
      );
      expect((await readAll(tenantStreamName(main, D))).map((m) => [m.subject, m.info.streamSequence])).toEqual([
        [subjectFor(prefix, 'TENANT_CREATED', D), 1],
        [subjectFor(prefix, typeOf(1), D), 2],
      ]);
      await expect(jsm.streams.info(tenantStreamName(main, B))).rejects.toThrow(/not found/);
      await js.publish(subjectFor(prefix, 'TENANT_DELETED', D), JSON.stringify({ tenant_id: D }), { msgID: `${main}-deleted` });
      await waitFor(
        () =>
          jsm.streams.info(tenantStreamName(main, D)).then(
            () => 'exists',
            () => 'gone',
          ),
        (state) => state === 'gone',
        "D's stream to go",
      );
      await expect(jsm.streams.info(tenantStagingStreamName(main, D))).rejects.toThrow(/not found/);
    } finally {
      keeper.stop();
    }
  });
});
