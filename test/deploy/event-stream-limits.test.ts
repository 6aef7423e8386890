import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DiscardPolicy, connect, nanos, type NatsConnection } from 'nats';
import { getFreePort } from '../../src/devstack/free-port';
import { loadConfig } from '../../src/config/config';
import { deleteStreams } from '../../src/devstack/nats-streams';
import { ensureEventStream } from '../../src/events/jetstream-stream';
import { testEnv, uniqueName } from '../helpers/test-env';

/**
 * The event stream is bounded (issue 22, item 8): its age and size limits and discard policy come
 * from the configuration, and at a limit JetStream either drops the oldest events (the default:
 * publishing goes on, the disk never fills) or refuses publishes (the relay then waits with its
 * cursor). On the real NATS server of this run.
 */
jest.setTimeout(60_000);

const streams: string[] = [];
let nc: NatsConnection;

function names(): { stream: string; prefix: string } {
  const stream = uniqueName('LIMITS').replace(/-/g, '_').toUpperCase();
  streams.push(stream);
  return { stream, prefix: stream.toLowerCase() };
}

beforeAll(async () => {
  nc = await connect({ servers: testEnv().natsUrl });
});

afterAll(async () => {
  await nc.close();
  await deleteStreams(testEnv().natsUrl, streams);
});

describe('the event stream limits', () => {
  test('when the configuration is the default, then the stream keeps 30 days and 1 GiB, drops the oldest at a limit, one replica', () => {
    const config = loadConfig({});
    expect({
      age: config.natsStreamMaxAgeHours,
      bytes: config.natsStreamMaxBytes,
      discard: config.natsStreamDiscard,
      replicas: config.natsStreamReplicas,
    }).toEqual({ age: 720, bytes: 1024 ** 3, discard: 'old', replicas: 1 });
    expect(() => loadConfig({ NATS_STREAM_DISCARD: 'oldest' })).toThrow('NATS_STREAM_DISCARD must be one of old, new, got "oldest"');
    expect(() => loadConfig({ NATS_STREAM_MAX_BYTES: '1000' })).toThrow(/NATS_STREAM_MAX_BYTES must be between 1048576/);
  });

  test('when the stream is ensured with limits, then JetStream holds them, and ensuring again with others updates them', async () => {
    const { stream, prefix } = names();
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, stream, prefix, { maxAgeHours: 48, maxBytes: 64 * 1024 ** 2, discard: 'old', replicas: 1 });
    expect((await jsm.streams.info(stream)).config).toMatchObject({
      max_age: nanos(48 * 3_600_000),
      max_bytes: 64 * 1024 ** 2,
      discard: DiscardPolicy.Old,
      num_replicas: 1,
    });
    await ensureEventStream(jsm, stream, prefix, { maxAgeHours: 0, maxBytes: 32 * 1024 ** 2, discard: 'new', replicas: 1 });
    expect((await jsm.streams.info(stream)).config).toMatchObject({ max_age: 0, max_bytes: 32 * 1024 ** 2, discard: DiscardPolicy.New });
  });

  test('when the stream is full with discard old, then every publish is accepted and the oldest events leave', async () => {
    const { stream, prefix } = names();
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, stream, prefix, { maxAgeHours: 0, maxBytes: 8 * 1024, discard: 'old', replicas: 1 });
    const js = nc.jetstream();
    for (let i = 1; i <= 100; i += 1) await js.publish(`${prefix}.t-1.vm.spawned`, JSON.stringify({ i, pad: 'x'.repeat(200) }), { msgID: `${stream}-${i}` });
    const { state } = await jsm.streams.info(stream);
    expect(state.bytes).toBeLessThanOrEqual(8 * 1024);
    expect(state.first_seq).toBeGreaterThan(1);
    expect(state.last_seq).toBe(100);
  });

  test('when the stream is full with discard new, then JetStream refuses the publish (the relay retries it, its cursor unmoved)', async () => {
    const { stream, prefix } = names();
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, stream, prefix, { maxAgeHours: 0, maxBytes: 8 * 1024, discard: 'new', replicas: 1 });
    const js = nc.jetstream();
    let refused: unknown;
    for (let i = 1; i <= 100 && refused === undefined; i += 1) {
      await js
        .publish(`${prefix}.t-1.vm.spawned`, JSON.stringify({ i, pad: 'x'.repeat(200) }), { msgID: `${stream}-${i}` })
        .catch((error: unknown) => (refused = error));
    }
    // JetStream's error 10077 (the nats.js error says only "503"; its api_error has the words).
    expect((refused as { api_error?: unknown }).api_error).toMatchObject({ err_code: 10077, description: 'maximum bytes exceeded' });
    const { state } = await jsm.streams.info(stream);
    expect({ first: state.first_seq, under: state.bytes <= 8 * 1024, last: state.last_seq }).toEqual({ first: 1, under: true, last: expect.any(Number) });
    expect(state.last_seq).toBeLessThan(100);
  });

  test("when the worker makes the stream with the default limits on the production NATS configuration's storage, then JetStream has room for it (its max_bytes is reserved at creation)", async () => {
    // The jetstream block of docker/nats/nats-production.conf, on a private nats-server (without its users).
    const production = readFileSync(path.resolve(__dirname, '../../docker/nats/nats-production.conf'), 'utf8');
    const maxFileStore = /max_file_store:\s*(\S+)/.exec(production)?.[1];
    expect(maxFileStore).toBeDefined();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-nats-storage-'));
    const port = await getFreePort();
    writeFileSync(
      path.join(dir, 'nats.conf'),
      `port: ${port}\nhost: 127.0.0.1\njetstream { store_dir: ${JSON.stringify(dir)}, max_file_store: ${maxFileStore} }\n`,
    );
    const server: ChildProcess = spawn('nats-server', ['-c', path.join(dir, 'nats.conf')], { stdio: 'ignore' });
    try {
      let private_: NatsConnection | undefined;
      for (let i = 0; i < 50 && !private_; i += 1)
        private_ = await connect({ servers: `nats://127.0.0.1:${port}` }).catch(async () => (await new Promise((r) => setTimeout(r, 100)), undefined));
      const jsm = await private_!.jetstreamManager();
      const config = loadConfig({});
      const limits = {
        maxAgeHours: config.natsStreamMaxAgeHours,
        maxBytes: config.natsStreamMaxBytes,
        discard: config.natsStreamDiscard,
        replicas: config.natsStreamReplicas,
      };
      await expect(ensureEventStream(jsm, 'VM_TENANT', 'vmtenant', limits)).resolves.toBeUndefined();
      // A stream that does not fit the storage is refused: the check can fail (10 GiB did, on a 10G store).
      await expect(ensureEventStream(jsm, 'TOO_BIG', 'toobig', { ...limits, maxBytes: 10 * 1024 ** 3 })).rejects.toThrow(/insufficient storage resources/);
      await private_!.close();
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
