/**
 * Issue 12, part 1 (Postgres): a private cluster with SSL on (server certificate signed by a test
 * CA, for 127.0.0.1) that accepts TCP logins only over TLS and by password. The migrations (CA from
 * PGSSLROOTCERT) and the API (CA in the URL's sslrootcert) run through it with sslmode=verify-full;
 * a wrong CA or a wrong password stops the start with a message naming postgres and the cause.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { generateToken } from '../../src/auth/token-format';
import type { ManagedChild } from '../../src/devstack/child-process';
import { getFreePort } from '../../src/devstack/free-port';
import { adminQuery } from '../../src/devstack/postgres-admin';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';
import { PostgresPart } from '../helpers/private-stack';
import { failedStart, spawnService } from '../helpers/service-process';
import { generateCertificates } from '../helpers/test-certificates';
import { testEnv, uniqueName } from '../helpers/test-env';

jest.setTimeout(180_000);

const OWNER_PASSWORD = 'owner-pw-3f9';
const APP_PASSWORD = 'app-pw-7c2';

describe('Postgres with sslmode=verify-full and a CA file', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-pg-tls-'));
  const certs = generateCertificates(dir, 'IP:127.0.0.1,DNS:localhost');
  const pgDir = path.join(dir, 'pg');
  const adminToken = generateToken();
  const taskQueue = uniqueName('tq-pg-tls');
  const children: ManagedChild[] = [];
  let postgres: PostgresPart;
  let api: ApiProcess | undefined;

  /** A login on the private cluster through TLS, verified against `ca`. */
  const tlsUrl = (login: string, ca = certs.ca) =>
    `postgres://${login}@127.0.0.1:${postgres.port}/vm_tenant?sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`;

  /** A file the server reads: as root the server runs as `postgres`, which must own it (a key must also be 0600). */
  function serverFile(name: string, content: Buffer | string, mode: number): string {
    const target = path.join(pgDir, name);
    writeFileSync(target, content, { mode });
    if (process.getuid?.() === 0) {
      const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString());
      chownSync(target, id('-u'), id('-g'));
    }
    return target;
  }

  beforeAll(async () => {
    postgres = new PostgresPart(pgDir, await getFreePort());
    await postgres.init();
    await postgres.start();
    const setup = postgres.url('postgres', 'postgres');
    const settings = {
      ssl: 'on',
      ssl_cert_file: serverFile('server.crt', readFileSync(certs.serverCert), 0o644),
      ssl_key_file: serverFile('server.key', readFileSync(certs.serverKey), 0o600),
      // The Unix socket (this setup) trusts; TCP takes TLS and a password, never plaintext.
      hba_file: serverFile('tls_hba.conf', 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n', 0o644),
    };
    for (const [name, value] of Object.entries(settings)) await adminQuery(setup, `alter system set ${name} = '${value}'`);
    await adminQuery(setup, `alter role postgres password '${OWNER_PASSWORD}'`);
    await postgres.restart();
  });

  afterAll(async () => {
    await api?.stop();
    await Promise.all(children.map((child) => child.stop(20_000)));
    if (postgres?.isRunning()) await postgres.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('when the migrations get sslmode=verify-full and the CA in PGSSLROOTCERT, then they run over TLS', async () => {
    const migrate = spawnService('migrate-tls', 'src/cli/migrate.ts', {
      MIGRATION_DATABASE_URL: tlsUrl(`postgres:${OWNER_PASSWORD}`).replace(/&sslrootcert=[^&]*/, ''),
      PGSSLROOTCERT: certs.ca,
    });
    children.push(migrate);
    const exit = await migrate.exited;
    expect({ code: exit.code, output: exit.code === 0 ? '' : migrate.recentOutput().join('\n') }).toEqual({ code: 0, output: '' });
    await adminQuery(tlsUrl(`postgres:${OWNER_PASSWORD}`), `alter role vm_tenant_app password '${APP_PASSWORD}'`);
  });

  test('when the API gets a verify-full URL with sslrootcert, then it starts, is ready, and a tenant and its ledger entry are written over TLS', async () => {
    api = await startApiProcess({
      DATABASE_URL: tlsUrl(`vm_tenant_app:${APP_PASSWORD}`),
      ADMIN_TOKEN: adminToken,
      TEMPORAL_TASK_QUEUE: taskQueue,
      API_METRICS_PORT: '0',
    });
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    const tenantId = uniqueName('pgtls')
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-');
    const created = await fetch(`${api.url}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant_id: tenantId, display_name: 'TLS tenant', max_vms: 1, storage_quota_gb: 10, api_rate_limit_rpm: 60 }),
    });
    expect(created.status).toBe(201);

    const check = new pg.Client({ connectionString: tlsUrl(`postgres:${OWNER_PASSWORD}`) });
    await check.connect();
    try {
      const ledger = await check.query('select event_type from audit_events where tenant_id = $1', [tenantId]);
      expect(ledger.rows).toEqual([{ event_type: 'TENANT_CREATED' }]);
      const sessions = await check.query(
        "select bool_and(s.ssl) as all_tls, count(*)::int as n from pg_stat_ssl s join pg_stat_activity a using (pid) where a.usename = 'vm_tenant_app'",
      );
      expect(sessions.rows[0]).toMatchObject({ all_tls: true, n: expect.any(Number) });
      expect(sessions.rows[0].n).toBeGreaterThan(0);
    } finally {
      await check.end();
    }
  });

  /** The API or the worker on DATABASE_URL, expected to give up starting: its exit code and fatal line. */
  async function failedStartOn(entry: 'src/api/server.ts' | 'src/workers/worker.ts', databaseUrl: string) {
    const child = spawnService(path.basename(entry, '.ts'), entry, {
      PORT: '0',
      DATA_DIR: mkdtempSync(path.join(dir, 'service-')),
      DATABASE_URL: databaseUrl,
      NATS_URL: testEnv().natsUrl,
      TEMPORAL_ADDRESS: testEnv().temporalAddress,
      TEMPORAL_TASK_QUEUE: taskQueue,
      ADMIN_TOKEN: adminToken,
    });
    children.push(child);
    return failedStart(child);
  }

  test('when the API is given a CA that did not sign the server certificate, then it does not start and says postgres and the failed verification', async () => {
    const result = await failedStartOn('src/api/server.ts', tlsUrl(`vm_tenant_app:${APP_PASSWORD}`, certs.otherCa));
    expect(result.code).toBe(1);
    expect(result.message).toContain('api failed to start');
    expect(result.message).toContain(
      `postgres at 127.0.0.1:${postgres.port}/vm_tenant as vm_tenant_app (sslmode=verify-full): TLS certificate verify failed: unable to verify the first certificate (UNABLE_TO_VERIFY_LEAF_SIGNATURE)`,
    );
  });

  test('when the worker is given a wrong password, then it does not start and says postgres refused the login', async () => {
    const result = await failedStartOn('src/workers/worker.ts', tlsUrl('vm_tenant_app:not-the-password'));
    expect(result.code).toBe(1);
    expect(result.message).toContain('worker failed to start');
    expect(result.message).toContain(
      `postgres at 127.0.0.1:${postgres.port}/vm_tenant as vm_tenant_app (sslmode=verify-full): password authentication failed for user \\"vm_tenant_app\\" (28P01)`,
    );
  });
});
