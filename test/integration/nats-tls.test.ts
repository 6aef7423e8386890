/**
 * Issue 12, part 1 (NATS): the API, the worker and the tail command reach a nats-server that
 * requires TLS and authorizes by JWT (a credentials file), through NATS_URL=tls://…,
 * NATS_CREDS_FILE and NATS_TLS_CA_FILE; a wrong CA or an unknown account stops the start with a
 * message naming nats and the cause.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { generateToken } from '../../src/auth/token-format';
import type { ManagedChild } from '../../src/devstack/child-process';
import { loadSimulatorConfig } from '../../src/fleet-simulator/simulator-config';
import { startSimulator, type RunningSimulator } from '../../src/fleet-simulator/start-simulator';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';
import { startNatsTlsServer, type NatsTlsServer } from '../helpers/nats-tls-server';
import { failedStart, spawnService, waitForLine } from '../helpers/service-process';
import { SAMPLE_PUBKEY, SMALL_VM, eventually } from '../helpers/test-stack';
import { generateCertificates } from '../helpers/test-certificates';
import { testEnv, uniqueName } from '../helpers/test-env';

const execFileAsync = promisify(execFile);
const TAIL = path.resolve(__dirname, '../../bin/vm-tenant-events.js');

jest.setTimeout(180_000);

describe('NATS over TLS with a credentials file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-nats-tls-'));
  const certs = generateCertificates(dir, 'IP:127.0.0.1,DNS:localhost');
  const stream = uniqueName('NTLS').replace(/-/g, '_').toUpperCase();
  const adminToken = generateToken();
  const children: ManagedChild[] = [];
  let nats: NatsTlsServer;
  let fleet: RunningSimulator;
  let api: ApiProcess | undefined;

  beforeAll(async () => {
    nats = await startNatsTlsServer(dir, certs);
    fleet = await startSimulator({
      config: loadSimulatorConfig({ FLEET_PORT: '0', FLEET_STATE_FILE: path.join(dir, 'fleet-state.json'), FLEET_BOOT_MS: '50' }),
    });
  });

  afterAll(async () => {
    await api?.stop();
    await Promise.all(children.map((child) => child.stop(20_000)));
    await fleet?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the services and the tail command get: the TLS server, its CA and the credentials file. */
  const natsEnv = (overrides: Record<string, string> = {}) => ({
    NATS_URL: nats.url,
    NATS_CREDS_FILE: nats.credsFile,
    NATS_TLS_CA_FILE: certs.ca,
    NATS_STREAM: stream,
    NATS_SUBJECT_PREFIX: stream.toLowerCase(),
    ...overrides,
  });

  function startWorker(name: string, overrides: Record<string, string> = {}): ManagedChild {
    const t = testEnv();
    const child = spawnService(name, 'src/workers/worker.ts', {
      DATA_DIR: mkdtempSync(path.join(dir, `${name}-`)),
      DATABASE_URL: t.databaseUrl,
      TEMPORAL_ADDRESS: t.temporalAddress,
      TEMPORAL_TASK_QUEUE: `vm-tenant-${stream.toLowerCase()}`,
      FLEET_URL: fleet.url,
      ...natsEnv(overrides),
    });
    children.push(child);
    return child;
  }

  async function call(method: string, route: string, token: string, body: unknown): Promise<{ status: number; body: any }> {
    const response = await fetch(`${api!.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() };
  }

  test('when the worker and the API connect through TLS with a credentials file, then lifecycle events go through that server and the tail command reads them through it', async () => {
    await waitForLine(startWorker('worker-nats-tls'), /"msg":"worker started"/, 120_000);
    api = await startApiProcess({ ...natsEnv(), ADMIN_TOKEN: adminToken, TEMPORAL_TASK_QUEUE: `vm-tenant-${stream.toLowerCase()}`, API_METRICS_PORT: '0' });
    const ready = await fetch(`${api.url}/readyz`);
    expect(ready.status).toBe(200);

    const tenantId = uniqueName('tls')
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-');
    const created = await call('POST', '/v1/tenants', adminToken, {
      tenant_id: tenantId,
      display_name: 'TLS tenant',
      max_vms: 2,
      storage_quota_gb: 20,
      api_rate_limit_rpm: 600,
    });
    expect(created.status).toBe(201);
    const issued = await call('POST', `/v1/tenants/${tenantId}/tokens`, adminToken, {
      subject_pubkey: SAMPLE_PUBKEY,
      scope: 'service:tenant-admin',
      expires_in_seconds: 3600,
    });
    expect(issued.status).toBe(201);
    const spawned = await call('POST', '/v1/vms', issued.body.token, SMALL_VM);
    expect(spawned.status).toBe(202);

    const tailEnv = { PATH: process.env.PATH!, ...natsEnv() };
    const types = await eventually(
      async () => {
        const { stdout } = await execFileAsync(TAIL, ['--tenant', tenantId, '--from-start', '--no-follow'], { env: tailEnv, timeout: 30_000 });
        const events = stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { event_type: string; tenant_id: string });
        return events.some((e) => e.event_type === 'VM_RUNNING') ? events.map((e) => e.event_type) : undefined;
      },
      60_000,
      'VM_RUNNING in the tail through TLS',
    );
    expect(types).toEqual(expect.arrayContaining(['TENANT_CREATED', 'VM_SPAWN_REQUESTED', 'VM_RUNNING']));
  });

  test('when the API is given a CA that did not sign the server certificate, then it does not start and says nats and the failed verification', async () => {
    const wrongCa = spawnService('api-nats-wrong-ca', 'src/api/server.ts', {
      PORT: '0',
      DATA_DIR: mkdtempSync(path.join(dir, 'api-wrong-ca-')),
      DATABASE_URL: testEnv().databaseUrl,
      TEMPORAL_ADDRESS: testEnv().temporalAddress,
      ADMIN_TOKEN: adminToken,
      ...natsEnv({ NATS_TLS_CA_FILE: certs.otherCa }),
    });
    children.push(wrongCa);
    const result = await failedStart(wrongCa);
    expect(result.code).toBe(1);
    expect(result.message).toContain('api failed to start');
    expect(result.message).toContain(
      `nats at ${nats.url} (TLS, credentials file): TLS certificate verify failed: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
  });

  test('when the worker presents the credentials of an account the server does not know, then it does not start and says nats refused the credentials', async () => {
    const result = await failedStart(startWorker('worker-nats-stranger', { NATS_CREDS_FILE: nats.strangerCredsFile }));
    expect(result.code).toBe(1);
    expect(result.message).toContain('worker failed to start');
    expect(result.message).toContain(
      `nats at ${nats.url} (TLS, credentials file): the server refused the credentials (NATS_CREDS_FILE, or the login in NATS_URL)`,
    );
  });

  test('when the tail command is given the wrong CA, then it exits 3 naming nats and the failed verification', async () => {
    const tail = execFileAsync(TAIL, ['--tenant', 'acme', '--no-follow'], {
      env: { PATH: process.env.PATH!, ...natsEnv({ NATS_TLS_CA_FILE: certs.otherCa }) },
      timeout: 30_000,
    });
    await expect(tail).rejects.toMatchObject({
      code: 3,
      stderr: expect.stringContaining(`vm-tenant-events: nats at ${nats.url} (TLS, credentials file): TLS certificate verify failed`),
    });
  });
});
