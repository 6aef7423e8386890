import { DiscardPolicy, connect, nanos, type NatsConnection } from 'nats';
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
  test('when the configuration is the default, then the stream keeps 30 days and 10 GiB, drops the oldest at a limit, one replica', () => {
    const config = loadConfig({});
    expect({ age: config.natsStreamMaxAgeHours, bytes: config.natsStreamMaxBytes, discard: config.natsStreamDiscard, replicas: config.natsStreamReplicas }).toEqual({ age: 720, bytes: 10 * 1024 ** 3, discard: 'old', replicas: 1 });
    expect(() => loadConfig({ NATS_STREAM_DISCARD: 'oldest' })).toThrow('NATS_STREAM_DISCARD must be one of old, new, got "oldest"');
    expect(() => loadConfig({ NATS_STREAM_MAX_BYTES: '1000' })).toThrow(/NATS_STREAM_MAX_BYTES must be between 1048576/);
  });

  test('when the stream is ensured with limits, then JetStream holds them, and ensuring again with others updates them', async () => {
    const { stream, prefix } = names();
    const jsm = await nc.jetstreamManager();
    await ensureEventStream(jsm, stream, prefix, { maxAgeHours: 48, maxBytes: 64 * 1024 ** 2, discard: 'old', replicas: 1 });
    expect((await jsm.streams.info(stream)).config).toMatchObject({ max_age: nanos(48 * 3_600_000), max_bytes: 64 * 1024 ** 2, discard: DiscardPolicy.Old, num_replicas: 1 });
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
      await js.publish(`${prefix}.t-1.vm.spawned`, JSON.stringify({ i, pad: 'x'.repeat(200) }), { msgID: `${stream}-${i}` }).catch((error: unknown) => (refused = error));
    }
    // JetStream's error 10077 (the nats.js error says only "503"; its api_error has the words).
    expect((refused as { api_error?: unknown }).api_error).toMatchObject({ err_code: 10077, description: 'maximum bytes exceeded' });
    const { state } = await jsm.streams.info(stream);
    expect({ first: state.first_seq, under: state.bytes <= 8 * 1024, last: state.last_seq }).toEqual({ first: 1, under: true, last: expect.any(Number) });
    expect(state.last_seq).toBeLessThan(100);
  });
});
