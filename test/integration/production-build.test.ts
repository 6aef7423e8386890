import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateToken } from '../../src/auth/token-format';
import { spawnManaged, type ManagedChild } from '../../src/devstack/child-process';
import { getFreePort } from '../../src/devstack/free-port';
import { eventually, SAMPLE_PUBKEY, SMALL_VM } from '../helpers/test-stack';
import { testEnv, uniqueName } from '../helpers/test-env';
import { deleteStreams } from '../../src/devstack/nats-streams';

/**
 * `npm run build` and the compiled entry points on plain `node` (no tsx, no webpack at start), as
 * the production image, compose profile and Kubernetes manifests run them, against this run's
 * Temporal, Postgres and NATS.
 */
const ROOT = path.resolve(__dirname, '../..');

jest.setTimeout(180_000);

describe('production build', () => {
  // Inside the repository, so that the output resolves its packages from node_modules.
  const outDir = mkdtempSync(path.join(ROOT, '.data', 'build-test-'));
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-build-'));
  const children: ManagedChild[] = [];
  const stream = uniqueName('B').replace(/-/g, '_').toUpperCase();

  afterAll(async () => {
    await Promise.all(children.map((child) => child.stop(10_000)));
    await deleteStreams(testEnv().natsUrl, [stream, `${stream}_CHECKPOINTS`]);
    rmSync(outDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs a compiled entry point with plain node: no --import, no loader. */
  function runCompiled(name: string, entry: string, env: Record<string, string>): ManagedChild {
    const file = path.join(outDir, entry);
    const child = spawnManaged(name, process.execPath, [file], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'production', LOG_LEVEL: 'info', ...env },
      onLine: () => undefined,
      keepLines: 200,
    });
    children.push(child);
    return child;
  }

  test('when running the build, then it compiles src/ to JavaScript and bundles the workflows ahead of time', () => {
    const build = spawnSync('npm', ['run', 'build', '--', outDir], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect({ status: build.status, output: build.status === 0 ? '' : `${build.stdout}${build.stderr}` }).toEqual({ status: 0, output: '' });
    for (const entry of ['api/server.js', 'workers/worker.js', 'cli/migrate.js', 'fleet-simulator/server.js', 'workflow-bundle.js']) {
      expect({ entry, exists: existsSync(path.join(outDir, entry)) }).toEqual({ entry, exists: true });
    }
    // The test files never reach the production output.
    expect(existsSync(path.join(outDir, 'test'))).toBe(false);
  });

  test('when the compiled migration, fleet simulator, worker and API run on plain node, then /readyz answers 200 and a VM spawns to running', async () => {
    const t = testEnv();
    const migrate = runCompiled('migrate', 'cli/migrate.js', { MIGRATION_DATABASE_URL: t.migrationDatabaseUrl });
    const migrated = await migrate.exited;
    expect({ ...migrated, output: migrated.code === 0 ? '' : migrate.recentOutput().join('\n') }).toEqual({ code: 0, signal: null, output: '' });

    const fleetPort = await getFreePort();
    const fleet = runCompiled('fleet', 'fleet-simulator/server.js', {
      FLEET_PORT: String(fleetPort),
      FLEET_BOOT_MS: '50',
      FLEET_STATE_FILE: path.join(dataDir, 'fleet-state.json'),
    });
    const adminToken = generateToken();
    const appEnv = {
      TEMPORAL_ADDRESS: t.temporalAddress,
      TEMPORAL_NAMESPACE: t.temporalNamespace,
      TEMPORAL_TASK_QUEUE: uniqueName('tq-build'),
      DATABASE_URL: t.databaseUrl,
      NATS_URL: t.natsUrl,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: stream.toLowerCase(),
      FLEET_URL: `http://127.0.0.1:${fleetPort}`,
      DATA_DIR: dataDir,
      API_METRICS_PORT: '0',
      WORKER_METRICS_PORT: '0',
      TEMPORAL_SDK_METRICS_PORT: '0',
    };
    const worker = runCompiled('worker', 'workers/worker.js', appEnv);
    const apiPort = await getFreePort();
    const api = runCompiled('api', 'api/server.js', { ...appEnv, PORT: String(apiPort), ADMIN_TOKEN: adminToken });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const output = () => [fleet, worker, api].map((child) => `--- ${child.name}\n${child.recentOutput().join('\n')}`).join('\n');

    const started = await eventually(
      async () => worker.hasExited() || worker.recentOutput().some((line) => line.includes('worker started')),
      60_000,
      'worker start',
    ).catch(() => false);
    expect({ started, running: !worker.hasExited(), output: started && !worker.hasExited() ? '' : output() }).toEqual({
      started: true,
      running: true,
      output: '',
    });
    // The compiled worker ran the bundle the build made: no webpack at start.
    const startLine = worker.recentOutput().find((line) => line.includes('worker started')) ?? '';
    expect(JSON.parse(startLine).workflows).toBe(`prebuilt ${path.join(outDir, 'workflow-bundle.js')}`);

    const ready = await eventually(
      async () => {
        if (api.hasExited()) return { status: -1 };
        const response = await fetch(`${apiUrl}/readyz`).catch(() => null);
        return response?.status === 200 ? { status: 200 } : null;
      },
      60_000,
      'API /readyz',
    ).catch(() => ({ status: 0 }));
    expect({ ...ready, output: ready.status === 200 ? '' : output() }).toEqual({ status: 200, output: '' });

    const call = async (method: string, route: string, token: string, body?: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${apiUrl}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as any };
    };
    const tenantId = uniqueName('t-build')
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-');
    const tenant = await call('POST', '/v1/tenants', adminToken, {
      tenant_id: tenantId,
      display_name: 'Build test',
      max_vms: 2,
      storage_quota_gb: 20,
      api_rate_limit_rpm: 600,
    });
    expect(tenant.status).toBe(201);
    const issued = await call('POST', `/v1/tenants/${tenantId}/tokens`, adminToken, {
      subject_pubkey: SAMPLE_PUBKEY,
      scope: 'service:tenant-admin',
      expires_in_seconds: 600,
    });
    expect(issued.status).toBe(201);
    const spawned = await call('POST', '/v1/vms', issued.body.token, SMALL_VM, { 'idempotency-key': uniqueName('spawn') });
    expect(spawned.status).toBe(202);
    const running = await eventually(
      async () => {
        const vm = await call('GET', `/v1/vms/${spawned.body.vm_id}`, issued.body.token);
        return vm.body.status === 'running' ? vm.body : null;
      },
      30_000,
      'the VM to run',
    ).catch(() => null);
    expect({ running: running?.status ?? null, output: running ? '' : output() }).toEqual({ running: 'running', output: '' });
  });
});
