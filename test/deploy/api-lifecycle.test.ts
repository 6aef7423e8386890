import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiscardPolicy, connect, nanos } from 'nats';
import { generateToken } from '../../src/auth/token-format';
import type { ManagedChild } from '../../src/devstack/child-process';
import { deleteStreams } from '../../src/devstack/nats-streams';
import { getFreePort } from '../../src/devstack/free-port';
import { spawnService, waitForLine } from '../helpers/service-process';
import { testEnv, uniqueName } from '../helpers/test-env';

/**
 * The API and the worker as processes, as an orchestrator runs them (issue 22, items 4 and 7):
 * started before Postgres or Temporal answers, they wait unready instead of exiting; /readyz takes
 * a replica out for Postgres only, and reports Temporal without failing on it; on SIGTERM the API
 * stops accepting and finishes the request in flight. Postgres and Temporal are the real ones of
 * this run, reached through a TCP relay the test opens and closes (a server that is not there yet,
 * then one that is, then one that blinks).
 */
jest.setTimeout(180_000);

/** A TCP port that refuses connections until `open()`, then relays them to `target`; `close()` refuses again and cuts the relayed ones. */
class Relay {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    this.server = net.createServer((socket) => {
      const upstream = net.connect(this.target.port, this.target.host);
      for (const end of [socket, upstream]) {
        this.sockets.add(end);
        end.on('close', () => this.sockets.delete(end));
        end.on('error', () => undefined);
      }
      socket.pipe(upstream).pipe(socket);
      socket.on('close', () => upstream.destroy());
      upstream.on('close', () => socket.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server) await new Promise((resolve) => this.server!.close(resolve));
    this.server = null;
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-lifecycle-'));
const stream = uniqueName('LIFE').replace(/-/g, '_').toUpperCase();
const children: ManagedChild[] = [];
const relays: Relay[] = [];
const adminToken = generateToken();

async function relayTo(address: string): Promise<Relay> {
  const url = address.includes('://') ? new URL(address) : new URL(`tcp://${address}`);
  const relay = new Relay(await getFreePort(), { host: url.hostname, port: Number(url.port) });
  relays.push(relay);
  return relay;
}

function viaRelay(databaseUrl: string, relay: Relay): string {
  const url = new URL(databaseUrl);
  url.port = String(relay.port);
  return url.toString();
}

async function run(name: string, entry: string, env: Record<string, string>): Promise<ManagedChild> {
  const t = testEnv();
  const child = spawnService(name, entry, {
    DATA_DIR: mkdtempSync(path.join(dir, `${name}-`)),
    DATABASE_URL: t.databaseUrl,
    TEMPORAL_ADDRESS: t.temporalAddress,
    NATS_URL: t.natsUrl,
    NATS_STREAM: stream,
    NATS_SUBJECT_PREFIX: stream.toLowerCase(),
    TEMPORAL_TASK_QUEUE: uniqueName('tq-life'),
    FLEET_URL: 'http://127.0.0.1:9',
    ADMIN_TOKEN: adminToken,
    ...env,
  });
  children.push(child);
  return child;
}

async function get(url: string, token?: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.json().catch(() => null) };
}

afterAll(async () => {
  await Promise.all(children.map((child) => child.stop(15_000)));
  await Promise.all(relays.map((relay) => relay.close()));
  await deleteStreams(testEnv().natsUrl, [stream, `${stream}_CHECKPOINTS`]);
  rmSync(dir, { recursive: true, force: true });
});

describe('start-up before the dependencies answer', () => {
  test.each([
    ['api', 'src/api/server.ts', /api listening/],
    ['worker', 'src/workers/worker.ts', /worker started/],
  ])(
    'when %s starts while Postgres and Temporal refuse connections, then it waits (reporting why) instead of exiting, and starts once they answer',
    async (name, entry, started) => {
      const postgres = await relayTo(testEnv().databaseUrl);
      const temporal = await relayTo(testEnv().temporalAddress);
      const child = await run(name, entry, {
        PORT: String(await getFreePort()),
        DATABASE_URL: viaRelay(testEnv().databaseUrl, postgres),
        TEMPORAL_ADDRESS: `127.0.0.1:${temporal.port}`,
      });

      await waitForLine(child, new RegExp(`waiting for postgres at 127\\.0\\.0\\.1:${postgres.port}.*ECONNREFUSED`), 30_000);
      await sleep(3_000);
      expect(child.hasExited()).toBe(false);
      // Reported at once, then at most every 30 s: not a line per retry.
      expect(child.recentOutput().filter((line) => line.includes('waiting for postgres')).length).toBe(1);

      await postgres.open();
      await waitForLine(child, new RegExp(`waiting for temporal at 127\\.0\\.0\\.1:${temporal.port}`), 30_000);
      expect(child.hasExited()).toBe(false);

      await temporal.open();
      await waitForLine(child, started, 60_000);
      expect(child.hasExited()).toBe(false);
      if (name === 'worker') {
        // The worker made the event stream with the configured limits (defaults here: 30 days, 1 GiB, oldest out).
        const nc = await connect({ servers: testEnv().natsUrl });
        const { config } = await (await nc.jetstreamManager()).streams.info(stream);
        await nc.close();
        expect(config).toMatchObject({ max_age: nanos(720 * 3_600_000), max_bytes: 1024 ** 3, discard: DiscardPolicy.Old, num_replicas: 1 });
      }
    },
  );

  test('when the database login is wrong, then the API still stops at once, naming it (only an unreachable server is waited for)', async () => {
    const url = new URL(testEnv().databaseUrl);
    url.username = 'no_such_login_for_vm_tenant';
    const child = await run('api-bad-login', 'src/api/server.ts', { PORT: String(await getFreePort()), DATABASE_URL: url.toString() });
    const exit = await Promise.race([child.exited, sleep(30_000).then(() => null)]);
    expect(exit?.code).toBe(1);
    expect(child.recentOutput().join('\n')).toMatch(/api failed to start.*no_such_login_for_vm_tenant/);
  });
});

describe('readiness and shutdown of a running API', () => {
  let api: ManagedChild;
  let url: string;
  let postgres: Relay;
  let temporal: Relay;

  beforeAll(async () => {
    postgres = await relayTo(testEnv().databaseUrl);
    temporal = await relayTo(testEnv().temporalAddress);
    await postgres.open();
    await temporal.open();
    const port = await getFreePort();
    url = `http://127.0.0.1:${port}`;
    api = await run('api-ready', 'src/api/server.ts', {
      PORT: String(port),
      DATABASE_URL: viaRelay(testEnv().databaseUrl, postgres),
      TEMPORAL_ADDRESS: `127.0.0.1:${temporal.port}`,
    });
    await waitForLine(api, /api listening/, 60_000);
  });

  test('when Temporal blinks, then /readyz stays 200 and names it, and routes that do not need it answer; when Postgres is gone, /readyz is 503', async () => {
    expect(await get(`${url}/readyz`)).toMatchObject({
      status: 200,
      body: { status: 'ready', dependencies: { postgres: { ok: true }, temporal: { ok: true }, nats: { ok: true } } },
    });

    await temporal.close();
    const ready = await get(`${url}/readyz`);
    expect(ready).toMatchObject({
      status: 200,
      body: { status: 'ready', dependencies: { postgres: { ok: true }, temporal: { ok: false }, nats: { ok: true } } },
    });
    expect(await get(`${url}/v1/tenants`, adminToken)).toMatchObject({ status: 200 });
    await temporal.open();

    await postgres.close();
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 503, body: { status: 'unavailable', dependencies: { postgres: { ok: false } } } });
    await postgres.open();
    for (let i = 0; i < 50 && (await get(`${url}/readyz`)).status !== 200; i += 1) await sleep(200);
    expect((await get(`${url}/readyz`)).status).toBe(200);
  });

  test('when SIGTERM comes while a request is in flight, then that request completes, new connections are refused, and the process exits 0', async () => {
    const body = JSON.stringify({
      tenant_id: uniqueName('drain').toLowerCase().slice(0, 60).replace(/-+$/, ''),
      display_name: 'Drain',
      max_vms: 1,
      storage_quota_gb: 10,
      api_rate_limit_rpm: 60,
    });
    const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const half = Math.floor(body.length / 2);
    // Keep-alive (HTTP/1.1's default) and half the body: the request is in flight until the rest comes.
    socket.write(
      `POST /v1/tenants HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${adminToken}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`,
    );
    await sleep(300);

    process.kill(api.pid!, 'SIGTERM');
    await waitForLine(api, /api draining/, 10_000);
    await sleep(300);
    const refused = await new Promise<string>((resolve) => {
      const probe = net.connect(Number(new URL(url).port), '127.0.0.1');
      probe.once('connect', () => (probe.destroy(), resolve('connected')));
      probe.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(refused).toBe('ECONNREFUSED');

    socket.write(body.slice(half));
    await Promise.race([ended, sleep(20_000)]);
    const [head] = answer.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 201 /);
    // The server closes the connection after the answer: a keep-alive client goes to another replica.
    expect(head).toMatch(/^connection: close$/im);
    expect(socket.destroyed || socket.readyState === 'closed').toBe(true);
    const exit = await Promise.race([api.exited, sleep(20_000).then(() => null)]);
    expect(exit?.code).toBe(0);
  });
});
