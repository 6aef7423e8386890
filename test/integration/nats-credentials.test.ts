/**
 * Issue 9, item 7: NATS in docker-compose.yml requires a login, passed in NATS_URL. nats.js ignores
 * credentials in a server URL, so natsConnectOptions must hand them over; a real nats-server with
 * a password shows it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import { spawnManaged, type ManagedChild } from '../../src/devstack/child-process';
import { getFreePort } from '../../src/devstack/free-port';
import { checkpointSubject, ensureCheckpointStream } from '../../src/ledger/checkpoint-stream';
import { ensureEventStream } from '../../src/events/jetstream-stream';
import { natsConnectOptions } from '../../src/events/nats-connection';
import { ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import { latestCheckpointReader } from '../../src/ledger/checkpoint-reader';
import { LedgerCheckpointSigner } from '../../src/ledger/checkpoint-signer';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { createLogger } from '../../src/logging/logger';
import { DEFAULT_EVENT_SUBJECT_PREFIX, subjectFor } from '../../src/shared/event-subjects';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

describe('NATS login from NATS_URL', () => {
  let server: ChildProcess;
  let port: number;
  beforeAll(async () => {
    port = await getFreePort();
    server = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '--user', 'vm_tenant', '--pass', 's3cret-p@ss'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = await connect({ servers: `127.0.0.1:${port}`, user: 'vm_tenant', pass: 's3cret-p@ss', reconnect: false }).catch(() => null);
      if (probe) {
        await probe.close();
        break;
      }
      if (Date.now() > deadline) throw new Error('nats-server did not start');
      await sleep(100);
    }
  });
  afterAll(async () => {
    server?.kill('SIGTERM');
  });

  test('when NATS_URL carries the login (URL-encoded), then the connection authenticates', async () => {
    const options = natsConnectOptions(`nats://vm_tenant:s3cret-p%40ss@127.0.0.1:${port}`);
    expect(options.servers).toBe(`nats://127.0.0.1:${port}`);
    const nc = await connect({ ...options, reconnect: false });
    await nc.flush();
    await nc.close();
  });

  test('when NATS_URL carries no login or a wrong one, then the server refuses the connection', async () => {
    for (const url of [`nats://127.0.0.1:${port}`, `nats://vm_tenant:wrong@127.0.0.1:${port}`]) {
      await expect(connect({ ...natsConnectOptions(url), reconnect: false, maxReconnectAttempts: 0 })).rejects.toThrow(/authorization/i);
    }
  });
});

/**
 * Issue 19, item 7: the worker and the API log in as different users with only their own rights.
 * A private nats-server runs the production configuration itself (docker/nats/nats-production.conf,
 * which includes docker/nats/vm-tenant-users.conf; only the port and the store directory are
 * overridden on the command line), and the worker's and the API's own code run through it.
 */
describe('the NATS users of docker/nats/vm-tenant-users.conf, on a real server', () => {
  const ROOT = path.resolve(__dirname, '../..');
  const STREAM = 'VM_TENANT';
  const CHECKPOINTS = 'VM_TENANT_CHECKPOINTS';
  const PREFIX = DEFAULT_EVENT_SUBJECT_PREFIX;
  const PASSWORDS = { worker: 'worker-pw-1a2b', api: 'api-pw-3c4d' };
  let natsServer: ManagedChild;
  let url: string;
  let dir: string;
  let testDb: LedgerTestDatabase;
  let worker: NatsConnection;
  let api: NatsConnection;
  let key: CheckpointSigningKey;

  const login = (user: string, pass: string) => connect({ servers: url, user, pass, reconnect: false });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'nats-users-'));
    const natsPort = await getFreePort();
    url = `nats://127.0.0.1:${natsPort}`;
    // The files as they ship, beside each other as in the container; only the store directory moves
    // (nats-server takes no -sd over a store_dir of its configuration file).
    const production = await readFile(path.join(ROOT, 'docker/nats/nats-production.conf'), 'utf8');
    expect(production.match(/store_dir: \/data\n/g)).toHaveLength(1);
    await writeFile(path.join(dir, 'nats.conf'), production.replace('store_dir: /data\n', `store_dir: "${path.join(dir, 'js')}"\n`));
    await copyFile(path.join(ROOT, 'docker/nats/vm-tenant-users.conf'), path.join(dir, 'vm-tenant-users.conf'));
    natsServer = spawnManaged(
      'nats-users',
      NATS_SERVER,
      ['-c', path.join(dir, 'nats.conf'), '-a', '127.0.0.1', '-p', String(natsPort), '-m', String(await getFreePort())],
      { env: { ...process.env, NATS_WORKER_PASSWORD: PASSWORDS.worker, NATS_API_PASSWORD: PASSWORDS.api }, onLine: () => undefined },
    );
    const deadline = Date.now() + 15_000;
    for (;;) {
      const probe = await login('vm_tenant_worker', PASSWORDS.worker).catch(() => null);
      if (probe) {
        await probe.close();
        break;
      }
      if (natsServer.hasExited() || Date.now() > deadline) throw new Error(`nats-server did not start:\n${natsServer.recentOutput().join('\n')}`);
      await sleep(100);
    }
    worker = await login('vm_tenant_worker', PASSWORDS.worker);
    api = await login('vm_tenant_api', PASSWORDS.api);
    testDb = await createLedgerTestDatabase('natsusers');
    key = await ensureCheckpointSigningKey(path.join(dir, 'worker-data'));
  });

  afterAll(async () => {
    await Promise.allSettled([worker?.close(), api?.close()]);
    await testDb?.drop();
    await natsServer?.stop(10_000);
    await rm(dir, { recursive: true, force: true });
  });

  /** What the worker does at start and while it runs: both streams, an event, a signed checkpoint. */
  async function runWorker(): Promise<void> {
    const jsm = await worker.jetstreamManager();
    await ensureEventStream(jsm, STREAM, PREFIX);
    await ensureCheckpointStream(jsm, CHECKPOINTS, PREFIX);
    const entry = await appendAuditEvent(testDb.serviceDb({ max: 1 }), newAuditEvent({ tenant_id: 'acme-corp' }));
    // As the event relay publishes an entry.
    await worker
      .jetstream()
      .publish(subjectFor(PREFIX, 'TENANT_CREATED', 'acme-corp'), JSON.stringify({ seq: entry.seq }), { msgID: entry.event_id, timeout: 5000 });
    const signer = new LedgerCheckpointSigner({
      db: testDb.serviceDb({ max: 2 }),
      js: worker.jetstream(),
      jsm,
      stream: CHECKPOINTS,
      subjectPrefix: PREFIX,
      key,
      everyEntries: 1,
      everyMs: 3_600_000,
      log: createLogger({ name: 'signer', level: 'silent' }),
    });
    expect(await signer.signIfDue()).toEqual({ signed: expect.objectContaining({ head: expect.objectContaining({ seq: entry.seq }) }) });
  }

  /** A call, and the JetStream API subject (or plain subject) the server must refuse it on. */
  type Call = [name: string, subject: string, call: () => Promise<unknown>];

  /** Every way to lose a stream's history, each of which must be refused to the login of `jsm`. */
  function destructiveCalls(nc: NatsConnection, jsm: JetStreamManager): Call[] {
    return [
      ...[STREAM, CHECKPOINTS].flatMap((name): Call[] => [
        [`delete stream ${name}`, `$JS.API.STREAM.DELETE.${name}`, () => jsm.streams.delete(name)],
        [`purge stream ${name}`, `$JS.API.STREAM.PURGE.${name}`, () => jsm.streams.purge(name)],
        [`delete message 1 of ${name}`, `$JS.API.STREAM.MSG.DELETE.${name}`, () => jsm.streams.deleteMessage(name, 1)],
      ]),
      // An update could add a limit that discards old checkpoints (sent as is: nats.js would read the stream first).
      [
        `update stream ${CHECKPOINTS}`,
        `$JS.API.STREAM.UPDATE.${CHECKPOINTS}`,
        () =>
          nc.request(`$JS.API.STREAM.UPDATE.${CHECKPOINTS}`, JSON.stringify({ name: CHECKPOINTS, subjects: [checkpointSubject(PREFIX)], max_msgs: 1 }), {
            timeout: 2000,
          }),
      ],
    ];
  }

  /** What became of each call: 'refused' when the server refused exactly its subject. */
  async function outcomes(calls: Call[]): Promise<Record<string, string>> {
    const seen: Record<string, string> = {};
    for (const [name, subject, call] of calls) {
      seen[name] = await call().then(
        () => 'done',
        (error: unknown) => (String(error).includes(`Permissions Violation for Publish to "${subject}"`) ? 'refused' : `failed otherwise: ${String(error)}`),
      );
    }
    return seen;
  }

  const allRefused = (calls: Call[]) => Object.fromEntries(calls.map(([name]) => [name, 'refused']));

  test('when the worker creates the streams, publishes an event and signs a checkpoint with its login, then all of it works, and it may not delete, purge or reconfigure the checkpoint stream', async () => {
    await runWorker();
    await runWorker(); // a second start: the streams exist, the event stream's settings are brought up to date
    const jsm = await worker.jetstreamManager();
    const calls = destructiveCalls(worker, jsm);
    expect(await outcomes(calls)).toEqual(allRefused(calls));
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(2);
    expect((await jsm.streams.info(CHECKPOINTS)).state.messages).toBe(2);
  });

  test('when the API reads the newest checkpoint with its login, then it gets it; it may not publish a checkpoint or an event, create, change, purge or delete a stream', async () => {
    const latest = latestCheckpointReader({ jsm: () => api.jetstreamManager(), stream: CHECKPOINTS, key: async () => key.publicKey });
    expect(await latest()).toEqual(expect.objectContaining({ key_id: key.keyId }));
    await api.flush(); // its readiness check

    const jsm = await api.jetstreamManager();
    const calls: Call[] = [
      ...destructiveCalls(api, jsm),
      ['publish a checkpoint', checkpointSubject(PREFIX), () => api.jetstream().publish(checkpointSubject(PREFIX), '{"forged":true}', { timeout: 2000 })],
      [
        'publish an event',
        subjectFor(PREFIX, 'TENANT_CREATED', 'acme-corp'),
        () => api.jetstream().publish(subjectFor(PREFIX, 'TENANT_CREATED', 'acme-corp'), '{}', { timeout: 2000 }),
      ],
      ['create a stream', '$JS.API.STREAM.CREATE.API_MADE', () => jsm.streams.add({ name: 'API_MADE', subjects: ['api.made'] })],
      [
        `update stream ${STREAM}`,
        `$JS.API.STREAM.UPDATE.${STREAM}`,
        () => api.request(`$JS.API.STREAM.UPDATE.${STREAM}`, JSON.stringify({ name: STREAM, subjects: [`${PREFIX}.>`], max_msgs: 1 }), { timeout: 2000 }),
      ],
    ];
    expect(await outcomes(calls)).toEqual(allRefused(calls));
    const workerView = await worker.jetstreamManager();
    expect((await workerView.streams.info(CHECKPOINTS)).state.messages).toBe(2);
    expect((await workerView.streams.info(STREAM)).state.messages).toBe(2);
  });
});
