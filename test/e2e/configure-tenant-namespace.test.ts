/**
 * The how-to "configure a tenant namespace" (seeds 002/003), steps 1 to 5 with the how-to's values,
 * against the stack `npm start` runs: real API, worker and fleet simulator processes, this run's
 * Temporal, Postgres and NATS. Steps 1 to 3 run the how-to's curl commands as written (only the
 * placeholders and the port replaced); the other tenant's setup and step 4 go through the typed
 * client (src/client), as an API caller would; step 5 runs the real `service-fs` command.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn, type ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createVmTenantClient } from '../../src/client';
import { getFreePort } from '../../src/devstack/free-port';
import { testEnv, uniqueName } from '../helpers/test-env';
import { deleteStreams } from '../../src/devstack/nats-streams';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
const TENANT_ADMIN_PUBKEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFS6gN+61SWOguzCwIDCVr+rQWxQPArA323Uq2D18csN admin@acme';

/** The how-to's commands, copied from it character for character. */
const HOW_TO = {
  step1: `curl -X POST http://127.0.0.1:9221/v1/tenants \\
  -H "Authorization: Bearer <admin-token>" \\
  -H "Content-Type: application/json" \\
  -d '{
    "tenant_id": "acme-corp",
    "display_name": "Acme Corporation",
    "max_vms": 10,
    "storage_quota_gb": 100,
    "api_rate_limit_rpm": 600
  }'`,
  step2: `curl -X POST http://127.0.0.1:9221/v1/tenants/acme-corp/tokens \\
  -H "Authorization: Bearer <admin-token>" \\
  -H "Content-Type: application/json" \\
  -d '{
    "subject_pubkey": "<tenant-admin-pubkey>",
    "scope": "service:tenant-admin",
    "expires_in_seconds": 86400
  }'`,
  step3: `curl -s "http://127.0.0.1:9221/v1/vms" \\
  -H "Authorization: Bearer <tenant-admin-token>"`,
};

describe('how-to: configure a tenant namespace, against the stack npm start runs', () => {
  let stack: ChildProcess;
  let base: string;
  let adminToken: string;
  let output = '';
  let stream = '';
  let dataDir = '';
  const env = testEnv();
  const stackEnv: NodeJS.ProcessEnv = {};

  beforeAll(async () => {
    const port = await getFreePort();
    const fleetPort = await getFreePort();
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-e2e-'));
    stream = uniqueName('E2E').replace(/-/g, '_').toUpperCase();
    Object.assign(stackEnv, {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: String(port),
      FLEET_PORT: String(fleetPort),
      FLEET_BOOT_MS: '20',
      DATA_DIR: dataDir,
      TEMPORAL_ADDRESS: env.temporalAddress,
      TEMPORAL_TASK_QUEUE: uniqueName('e2e'),
      DATABASE_URL: env.databaseUrl,
      MIGRATION_DATABASE_URL: env.migrationDatabaseUrl,
      NATS_URL: env.natsUrl,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: stream.toLowerCase(),
      LEDGER_CHECKPOINT_EVERY_SECONDS: '1',
      LOG_LEVEL: 'warn',
    });
    base = `http://127.0.0.1:${port}`;
    stack = spawn(process.execPath, [path.join(ROOT, 'scripts/start.js')], { cwd: ROOT, env: stackEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    stack.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    stack.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 180_000;
    while (!output.includes('vm-tenant is running')) {
      if (stack.exitCode !== null || Date.now() > deadline) throw new Error(`stack did not start:\n${output}`);
      await sleep(200);
    }
    // The API wrote the admin token where the start-up banner says.
    adminToken = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
  }, 210_000);

  afterAll(async () => {
    if (stack && stack.exitCode === null) {
      const exited = new Promise((resolve) => stack.once('exit', resolve));
      stack.kill('SIGTERM');
      await exited;
    }
    // The stack's event and checkpoint streams live on the shared NATS server.
    await deleteStreams(env.natsUrl, [stream, `${stream}_CHECKPOINTS`]);
    rmSync(dataDir, { recursive: true, force: true });
  }, 60_000);

  const clientFor = (token: string) => createVmTenantClient({ baseUrl: base, token });

  /** Runs one of the how-to's commands in bash against this stack; its placeholders filled in. */
  const howTo = async (command: string, values: Record<string, string>): Promise<any> => {
    let script = command.replaceAll('http://127.0.0.1:9221', base);
    for (const [placeholder, value] of Object.entries(values)) script = script.replaceAll(`<${placeholder}>`, value);
    const { stdout } = await run('bash', ['-c', script], { env: { PATH: process.env.PATH } });
    return JSON.parse(stdout);
  };

  let tenantAdminToken: string;
  const VM = { vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12' };
  /** A spawn that must be accepted; a refusal fails with its problem body in the message. */
  const spawnAccepted = async (client: ReturnType<typeof clientFor>) => {
    const { response, error } = await client.POST('/v1/vms', { body: VM });
    expect({ status: response.status, problem: error }).toEqual({ status: 202, problem: undefined });
  };

  test("step 1: when the admin runs the how-to's curl to register acme-corp, then the tenant record comes back with created_at", async () => {
    const tenant = await howTo(HOW_TO.step1, { 'admin-token': adminToken });
    expect(tenant).toMatchObject({ tenant_id: 'acme-corp', display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 });
    expect(Date.parse(tenant.created_at)).not.toBeNaN();
  });

  test("step 2: when the admin runs the how-to's curl to issue the root tenant-admin token, then it is scoped to acme-corp", async () => {
    const issued = await howTo(HOW_TO.step2, { 'admin-token': adminToken, 'tenant-admin-pubkey': TENANT_ADMIN_PUBKEY });
    expect(issued).toMatchObject({ tenant_id: 'acme-corp', scope: 'service:tenant-admin' });
    expect(issued.token).toMatch(/^vmt_/);
    tenantAdminToken = issued.token;
  });

  test("step 3: when another tenant has VMs too, then the how-to's curl lists only acme-corp's", async () => {
    const admin = clientFor(adminToken);
    await admin.POST('/v1/tenants', { body: { tenant_id: 'globex', display_name: 'Globex', max_vms: 5, storage_quota_gb: 50, api_rate_limit_rpm: 600 } });
    const globex = await admin.POST('/v1/tenants/{tenant_id}/tokens', {
      params: { path: { tenant_id: 'globex' } },
      body: { subject_pubkey: TENANT_ADMIN_PUBKEY, scope: 'service:tenant-admin', expires_in_seconds: 3600 },
    });
    const globexClient = clientFor(globex.data!.token);
    for (let i = 0; i < 2; i++) await spawnAccepted(globexClient);
    const acme = clientFor(tenantAdminToken);
    await spawnAccepted(acme);

    const listed = await howTo(HOW_TO.step3, { 'tenant-admin-token': tenantAdminToken });
    expect(listed.items).toHaveLength(1);
    expect(listed.items.every((item: { tenant_id: string }) => item.tenant_id === 'acme-corp')).toBe(true);
  });

  test('step 4: when acme-corp (max_vms 10) asks for an 11th VM, then it gets 429 with a quota-exceeded body', async () => {
    const acme = clientFor(tenantAdminToken);
    for (let i = 0; i < 9; i++) await spawnAccepted(acme);
    const eleventh = await acme.POST('/v1/vms', { body: VM });
    expect(eleventh.response.status).toBe(429);
    expect(eleventh.response.headers.get('content-type')).toContain('application/problem+json');
    expect(eleventh.error).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: 10, in_use: 10, requested: 1 });
  });

  test('step 5: when service-fs reads the ledger, then the TENANT_CREATED entry names the admin token', async () => {
    const { stdout } = await run(
      path.join(ROOT, 'bin/service-fs.js'),
      ['read', '--filter', 'tenant-id=acme-corp', '--event-type', 'TENANT_CREATED', '--limit', '1'],
      {
        env: { PATH: process.env.PATH, DATABASE_URL: env.databaseUrl },
      },
    );
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({ tenant_id: 'acme-corp', event_type: 'TENANT_CREATED', actor: { token_id: 'tok_bootstrap_admin', scope: 'service:admin' } });
    // The admin token itself never reaches the stack's output.
    expect(output).not.toContain(adminToken);
    expect(output).not.toContain(tenantAdminToken);
  });

  test('then: when service-fs verify runs with the key the API publishes, then the chain and the checkpoints the worker signed match', async () => {
    const key = await createVmTenantClient({ baseUrl: base }).GET('/.well-known/vm-tenant/ledger-checkpoint-key', { parseAs: 'text' });
    expect(key.response.status).toBe(200);
    const keyFile = path.join(dataDir, 'checkpoint-key.json');
    writeFileSync(keyFile, key.data!);
    const verifyEnv = { PATH: process.env.PATH, DATABASE_URL: env.databaseUrl, NATS_URL: env.natsUrl, LEDGER_CHECKPOINT_STREAM: `${stream}_CHECKPOINTS` };
    // The worker signs the head within a second or two of the last entry.
    const deadline = Date.now() + 20_000;
    let stdout = '';
    while (!/^ok: all \d+ checkpoints signed by key/m.test(stdout) && Date.now() < deadline) {
      stdout = (await run(path.join(ROOT, 'bin/service-fs.js'), ['verify', '--checkpoint-key', keyFile], { env: verifyEnv })).stdout;
      if (!/^ok: all \d+ checkpoints/m.test(stdout)) await sleep(500);
    }
    expect(stdout).toMatch(
      /^ok: all \d+ entries valid\nok: all \d+ checkpoints signed by key [0-9a-f]{16} match the ledger; the latest covers seq \d+ \(signed .+\)\n$/,
    );
  });
});
