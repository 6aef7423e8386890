/**
 * Issue 11, part 5: the tenant is the last token of every event subject, so a NATS user can be
 * confined to one tenant by permissions alone. A private nats-server runs the configuration that
 * docs/events.md shows; a tenant-scoped user receives its tenant's events and is refused another's.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AckPolicy, connect, type NatsConnection, type NatsError, type Subscription } from 'nats';
import { getFreePort } from '../../src/devstack/free-port';
import { ensureEventStream } from '../../src/events/jetstream-stream';
import { ensureTenantStream, tenantStagingStreamName, tenantStreamName } from '../../src/events/tenant-streams';
import type { AuditEventType } from '../../src/shared/audit-event-types';
import { ownerSubjectFilter, subjectFor } from '../../src/shared/event-subjects';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const STREAM = 'VM_TENANT';
const PREFIX = 'vmtenant';
const TENANT = 'acme-corp';
const OTHER = 'globex';

/** The permissions docs/events.md gives a consumer of one tenant's events. */
function tenantPermissions(tenantId: string) {
  return {
    publish: {
      allow: [
        `$JS.API.CONSUMER.CREATE.${STREAM}.${tenantId}.${ownerSubjectFilter(PREFIX, tenantId)}`,
        `$JS.API.CONSUMER.INFO.${STREAM}.${tenantId}`,
        `$JS.API.CONSUMER.MSG.NEXT.${STREAM}.${tenantId}`,
        `$JS.API.CONSUMER.DELETE.${STREAM}.${tenantId}`,
        `$JS.ACK.${STREAM}.${tenantId}.>`,
      ],
    },
    subscribe: { allow: [ownerSubjectFilter(PREFIX, tenantId), `_INBOX_${tenantId}.>`] },
  };
}

/** The permissions docs/events.md gives a user that reads the tenant's own stream (service-fs tenant-stream). */
function tenantStreamPermissions(tenantId: string) {
  const own = tenantStreamName(STREAM, tenantId);
  return {
    publish: {
      allow: [
        `$JS.API.STREAM.INFO.${own}`,
        `$JS.API.CONSUMER.CREATE.${own}`,
        `$JS.API.CONSUMER.CREATE.${own}.>`,
        `$JS.API.CONSUMER.DURABLE.CREATE.${own}.*`,
        `$JS.API.CONSUMER.INFO.${own}.*`,
        `$JS.API.CONSUMER.MSG.NEXT.${own}.*`,
        `$JS.API.CONSUMER.DELETE.${own}.*`,
        `$JS.ACK.${own}.>`,
      ],
    },
    subscribe: { allow: [`_INBOX_${tenantId}.>`] },
  };
}

async function startNatsServer(dir: string, port: number): Promise<ChildProcess> {
  const config = {
    listen: `127.0.0.1:${port}`,
    jetstream: { store_dir: path.join(dir, 'js') },
    authorization: {
      users: [
        { user: 'relay', password: 'relay-pass' },
        { user: TENANT, password: 'acme-pass', permissions: tenantPermissions(TENANT) },
        { user: `${TENANT}-stream`, password: 'acme-stream-pass', permissions: tenantStreamPermissions(TENANT) },
      ],
    },
  };
  // nats-server reads JSON as its configuration syntax is a superset of it.
  await writeFile(path.join(dir, 'nats.conf'), JSON.stringify(config, null, 2));
  const server = spawn(NATS_SERVER, ['-c', path.join(dir, 'nats.conf')], { stdio: 'ignore' });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = await connect({ servers: `127.0.0.1:${port}`, user: 'relay', pass: 'relay-pass', reconnect: false }).catch(() => null);
    if (probe) {
      await probe.close();
      return server;
    }
    if (Date.now() > deadline) throw new Error('nats-server did not start');
    await sleep(100);
  }
}

/** Resolves with the permission error the server sends for a subscription, or null if none comes. */
function refusal(nc: NatsConnection, subject: string): Promise<NatsError | null> {
  return new Promise((resolve) => {
    let sub: Subscription | undefined = undefined;
    const timer = setTimeout(() => {
      sub?.unsubscribe();
      resolve(null);
    }, 3000);
    sub = nc.subscribe(subject, {
      callback: (error) => {
        if (!error) return;
        clearTimeout(timer);
        resolve(error);
      },
    });
  });
}

describe('tenant-scoped NATS users on tenant-owned event subjects', () => {
  let dir: string;
  let server: ChildProcess;
  let port: number;
  let relay: NatsConnection;
  let tenant: NatsConnection;

  async function publish(eventType: AuditEventType, tenantId: string | null, n: number): Promise<void> {
    const body = { event_id: `${tenantId ?? 'platform'}-${n}`, event_type: eventType, tenant_id: tenantId };
    await relay.jetstream().publish(subjectFor(PREFIX, eventType, tenantId), JSON.stringify(body), { msgID: body.event_id });
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vm-tenant-nats-perms-'));
    port = await getFreePort();
    server = await startNatsServer(dir, port);
    relay = await connect({ servers: `127.0.0.1:${port}`, user: 'relay', pass: 'relay-pass' });
    await ensureEventStream(await relay.jetstreamManager(), STREAM, PREFIX);
    tenant = await connect({ servers: `127.0.0.1:${port}`, user: TENANT, pass: 'acme-pass', inboxPrefix: `_INBOX_${TENANT}` });
  });
  afterAll(async () => {
    await tenant?.close();
    await relay?.close();
    server?.kill('SIGTERM');
    await new Promise((resolve) => (server?.exitCode === null ? server.once('exit', resolve) : resolve(null)));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('when a tenant user subscribes to its subjects, then it receives its own events live and subscriptions to another tenant or to all are refused', async () => {
    const received: string[] = [];
    const own = tenant.subscribe(ownerSubjectFilter(PREFIX, TENANT), { callback: (_e, m) => received.push(m.subject) });
    await tenant.flush();
    expect(await refusal(tenant, ownerSubjectFilter(PREFIX, OTHER))).toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    expect(await refusal(tenant, `${PREFIX}.>`)).toMatchObject({ code: 'PERMISSIONS_VIOLATION' });
    expect(await refusal(tenant, `${PREFIX}.vm.running.*`)).toMatchObject({ code: 'PERMISSIONS_VIOLATION' });

    await publish('VM_RUNNING', TENANT, 1);
    await publish('VM_RUNNING', OTHER, 1);
    await publish('TENANT_CREATED', null, 1);
    await publish('TOKEN_ISSUED', TENANT, 2);
    await relay.flush();
    await sleep(300);
    await tenant.flush();
    own.unsubscribe();
    expect(received).toEqual([`${PREFIX}.vm.running.${TENANT}`, `${PREFIX}.token.issued.${TENANT}`]);
  });

  test("when a tenant user creates its filtered consumer, then it replays only its tenant's stored events, and no other consumer is allowed", async () => {
    await publish('VM_DESTROYED', OTHER, 2);
    await publish('VM_DESTROYED', TENANT, 3);
    const jsm = await tenant.jetstreamManager({ checkAPI: false });
    await jsm.consumers.add(STREAM, { name: TENANT, filter_subject: ownerSubjectFilter(PREFIX, TENANT), ack_policy: AckPolicy.None });
    const consumer = await tenant.jetstream().consumers.get(STREAM, TENANT);
    const batch = await consumer.fetch({ max_messages: 100, expires: 2000 });
    const replayed: Array<{ subject: string; tenant_id: string | null }> = [];
    for await (const m of batch) replayed.push({ subject: m.subject, tenant_id: m.json<{ tenant_id: string | null }>().tenant_id });
    expect(replayed.map((m) => m.subject)).toEqual([`${PREFIX}.vm.running.${TENANT}`, `${PREFIX}.token.issued.${TENANT}`, `${PREFIX}.vm.destroyed.${TENANT}`]);
    expect(replayed.every((m) => m.tenant_id === TENANT)).toBe(true);

    // Its own consumer name on another tenant's subjects, or on every subject, is refused.
    for (const filter of [ownerSubjectFilter(PREFIX, OTHER), `${PREFIX}.>`, `${PREFIX}.vm.running.*`]) {
      await expect(jsm.consumers.add(STREAM, { name: TENANT, filter_subject: filter, ack_policy: AckPolicy.None })).rejects.toThrow(/permission/i);
    }
    // Another tenant's consumer, created by the operator, can be neither created nor read by this user.
    await (
      await relay.jetstreamManager()
    ).consumers.add(STREAM, { name: OTHER, filter_subject: ownerSubjectFilter(PREFIX, OTHER), ack_policy: AckPolicy.None });
    await expect(jsm.consumers.add(STREAM, { name: OTHER, filter_subject: ownerSubjectFilter(PREFIX, OTHER), ack_policy: AckPolicy.None })).rejects.toThrow(
      /permission/i,
    );
    await expect(tenant.jetstream().consumers.get(STREAM, OTHER)).rejects.toThrow(/permission/i);
  });

  test("when a tenant's user reads its own stream, then it gets its events with sequences 1..n, vm-tenant-events --tenant-stream works as that user, and the event stream, the staging stream and another tenant's stream are refused", async () => {
    const operator = await relay.jetstreamManager();
    for (const tenantId of [TENANT, OTHER]) await ensureTenantStream(operator, { mainStream: STREAM, subjectPrefix: PREFIX, tenantId, limits: undefined });
    await publish('VM_FAILED', OTHER, 3);
    await publish('VM_FAILED', TENANT, 4);
    const mine = [`${PREFIX}.vm.running.${TENANT}`, `${PREFIX}.token.issued.${TENANT}`, `${PREFIX}.vm.destroyed.${TENANT}`, `${PREFIX}.vm.failed.${TENANT}`];
    const own = tenantStreamName(STREAM, TENANT);
    const user = await connect({ servers: `127.0.0.1:${port}`, user: `${TENANT}-stream`, pass: 'acme-stream-pass', inboxPrefix: `_INBOX_${TENANT}` });
    try {
      const jsm = await user.jetstreamManager({ checkAPI: false });
      for (let i = 0; i < 50 && (await jsm.streams.info(own)).state.messages < mine.length; i += 1) await sleep(100);
      // An ordered consumer (generated name), as vm-tenant-events makes.
      const ordered = await user.jetstream().consumers.get(own);
      const read: Array<[string, number]> = [];
      for await (const m of await ordered.fetch({ max_messages: 100, expires: 1500 })) read.push([m.subject, m.info.streamSequence]);
      expect(read).toEqual(mine.map((subject, i) => [subject, i + 1]));

      const cli = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/tail-events.ts',
          '--tenant',
          TENANT,
          '--tenant-stream',
          '--from-start',
          '--no-follow',
          '--inbox-prefix',
          `_INBOX_${TENANT}`,
        ],
        {
          cwd: path.resolve(__dirname, '../..'),
          env: { ...process.env, NATS_URL: `nats://${TENANT}-stream:acme-stream-pass@127.0.0.1:${port}`, NATS_STREAM: STREAM, NATS_SUBJECT_PREFIX: PREFIX },
        },
      );
      expect(
        cli.stdout
          .trim()
          .split('\n')
          .map((line) => (JSON.parse(line) as { subject: string }).subject),
      ).toEqual(mine);

      for (const stream of [STREAM, tenantStagingStreamName(STREAM, TENANT), tenantStreamName(STREAM, OTHER)]) {
        await expect(jsm.consumers.add(stream, { name: TENANT, ack_policy: AckPolicy.None })).rejects.toThrow(/permission/i);
        await expect(jsm.streams.info(stream)).rejects.toThrow(/permission/i);
        await expect(user.jetstream().consumers.get(stream)).rejects.toThrow(/permission/i);
      }
    } finally {
      await user.close();
    }
  });
});
