/**
 * Issue 12, part 1 (Temporal): the API and the worker connect through Temporal's environment
 * configuration. A TLS front (mutual TLS, certificates generated here with openssl) before this
 * run's real Temporal server shows that TEMPORAL_TLS_* reach both connections, and that a wrong
 * CA or a missing client certificate stops the start with a message naming temporal.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { ManagedChild } from '../../src/devstack/child-process';
import { startApiProcess } from '../helpers/api-process';
import { failedStart, spawnService, waitForLine } from '../helpers/service-process';
import { generateCertificates } from '../helpers/test-certificates';
import { testEnv, uniqueName } from '../helpers/test-env';
import { deleteStreams } from '../../src/devstack/nats-streams';

const SERVER_NAME = 'temporal.test';

jest.setTimeout(120_000);

describe('Temporal over TLS through its environment configuration', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-temporal-tls-'));
  const certs = generateCertificates(dir, `DNS:${SERVER_NAME}`);
  const stream = uniqueName('TLS').replace(/-/g, '_').toUpperCase();
  const children: ManagedChild[] = [];
  let front: tls.Server;
  let address: string;
  const sockets = new Set<net.Socket>();

  beforeAll(async () => {
    const [host, port] = testEnv().temporalAddress.split(':') as [string, string];
    // Mutual TLS in front of the plaintext dev server: the handshake is the real thing the clients do.
    front = tls.createServer(
      {
        key: readFileSync(certs.serverKey),
        cert: readFileSync(certs.serverCert),
        ca: readFileSync(certs.ca),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      },
      (socket) => {
        const upstream = net.connect(Number(port), host);
        for (const end of [socket, upstream]) {
          sockets.add(end);
          end.on('close', () => sockets.delete(end));
        }
        socket.pipe(upstream).pipe(socket);
        socket.on('error', () => upstream.destroy());
        upstream.on('error', () => socket.destroy());
      },
    );
    front.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(front.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop(10_000)));
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => front?.close(resolve));
    await deleteStreams(testEnv().natsUrl, [stream, `${stream}_CHECKPOINTS`]);
    rmSync(dir, { recursive: true, force: true });
  });

  const mutualTls = () => ({
    TEMPORAL_ADDRESS: address,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.ca,
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
    TEMPORAL_TLS_CLIENT_CERT_PATH: certs.clientCert,
    TEMPORAL_TLS_CLIENT_KEY_PATH: certs.clientKey,
  });

  function run(name: string, entry: string, env: Record<string, string>): ManagedChild {
    const t = testEnv();
    const child = spawnService(name, entry, {
      DATA_DIR: mkdtempSync(path.join(dir, `${name}-`)),
      DATABASE_URL: t.databaseUrl,
      NATS_URL: t.natsUrl,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: stream.toLowerCase(),
      TEMPORAL_TASK_QUEUE: uniqueName('tq-tls'),
      PORT: '0',
      FLEET_URL: 'http://127.0.0.1:9',
      ...env,
    });
    children.push(child);
    return child;
  }

  test('when the API gets the CA, server name and client pair in TEMPORAL_TLS_*, then it connects through mutual TLS and /readyz answers 200', async () => {
    const api = await startApiProcess(mutualTls());
    try {
      const response = await fetch(`${api.url}/readyz`);
      const body = (await response.json()) as { checks?: Record<string, { ok: boolean }> };
      expect({ status: response.status, body }).toEqual({ status: 200, body: expect.anything() });
      expect(JSON.stringify(body)).toContain('temporal');
    } finally {
      await api.stop();
    }
  });

  test('when the worker gets the same TEMPORAL_TLS_* variables, then it connects through mutual TLS and starts', async () => {
    const worker = run('worker-tls', 'src/workers/worker.ts', mutualTls());
    const started = await waitForLine(worker, /"msg":"worker started"/);
    expect(JSON.parse(started).temporal).toMatchObject({ address, tls: 'mutual', apiKey: false });
    await worker.stop(20_000);
  });

  test('when the server certificate is not signed by the configured CA, then the API does not start and says temporal and the cause', async () => {
    const api = run('api-wrong-ca', 'src/api/server.ts', { ...mutualTls(), TEMPORAL_TLS_SERVER_CA_CERT_PATH: certs.otherCa });
    const result = await failedStart(api);
    expect(result.code).toBe(1);
    expect(result.message).toContain('api failed to start');
    expect(result.message).toContain(`temporal at ${address} (TLS): TLS handshake failed: self-signed certificate in certificate chain`);
  });

  test('when the worker presents no client certificate to a server that requires one, then it does not start and says temporal', async () => {
    const { TEMPORAL_TLS_CLIENT_CERT_PATH: _cert, TEMPORAL_TLS_CLIENT_KEY_PATH: _key, ...serverOnly } = mutualTls();
    const worker = run('worker-no-cert', 'src/workers/worker.ts', serverOnly);
    const result = await failedStart(worker);
    expect(result.code).toBe(1);
    expect(result.message).toContain('worker failed to start');
    expect(result.message).toContain(`temporal at ${address} (TLS): TLS handshake failed: the server requires a client certificate`);
  });
});
