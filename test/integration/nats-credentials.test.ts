/**
 * Issue 9, item 7: NATS in docker-compose.yml requires a login, passed in NATS_URL. nats.js ignores
 * credentials in a server URL, so natsConnectOptions must hand them over; a real nats-server with
 * a password shows it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'nats';
import { getFreePort } from '../../src/devstack/free-port';
import { natsConnectOptions } from '../../src/events/nats-connection';

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
