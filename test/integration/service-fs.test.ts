import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

const BIN = path.resolve(__dirname, '../../bin/service-fs.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a child process, as an operator would. */
function serviceFs(args: readonly string[], options: { databaseUrl?: string; command?: string; cwd?: string } = {}): Promise<CliResult> {
  const env = { ...process.env, ...(options.databaseUrl === undefined ? {} : { DATABASE_URL: options.databaseUrl }) };
  const [file, fileArgs] = options.command === undefined ? [process.execPath, [BIN, ...args]] : [options.command, [...args]];
  return new Promise((resolve) => {
    execFile(file, fileArgs, { env, cwd: options.cwd ?? tmpdir(), timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

function jsonLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

let testDb: LedgerTestDatabase;
let service: Kysely<Database>;
let acmeCreatedEventId: string;

beforeAll(async () => {
  testDb = await createLedgerTestDatabase('service_fs');
  service = testDb.serviceDb({ max: 2 });
  const at = (time: string): Date => new Date(`2026-06-14T${time}Z`);
  const created = newAuditEvent({
    tenant_id: 'acme-corp',
    event_type: 'TENANT_CREATED',
    occurred_at: at('09:00:00.000'),
    details: { display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
    context: { actor_token_id: 'tok_admin_1', actor_scope: 'service:admin', request_id: 'req-create-acme', user_agent: 'curl/8.5.0' },
  });
  acmeCreatedEventId = created.event_id;
  // seq 1..6, in occurred_at order.
  await appendAuditEvent(service, created);
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex', event_type: 'TENANT_CREATED', occurred_at: at('09:30:00.000') }));
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', event_type: 'TOKEN_ISSUED', occurred_at: at('10:00:00.000') }));
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', vm_id: 'vm-a1', event_type: 'VM_SPAWN_REQUESTED', occurred_at: at('11:00:00.000') }));
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', vm_id: 'vm-a1', event_type: 'VM_RUNNING', occurred_at: at('11:00:05.000') }));
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', vm_id: 'vm-a2', event_type: 'VM_SPAWN_REQUESTED', occurred_at: at('12:00:00.000') }));
});

afterAll(async () => {
  await testDb.drop();
});

describe('service-fs read', () => {
  test('when the how-to command is run verbatim, then it prints exactly one JSON line: the tenant creation entry with every field', async () => {
    const result = await serviceFs(['read', '--filter', 'tenant-id=acme-corp', '--event-type', 'TENANT_CREATED', '--limit', '1'], {
      databaseUrl: testDb.serviceUrl,
    });

    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout.endsWith('\n')).toBe(true);
    const lines = jsonLines(result.stdout);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      seq: '1',
      event_id: acmeCreatedEventId,
      tenant_id: 'acme-corp',
      vm_id: null,
      event_type: 'TENANT_CREATED',
      occurred_at: '2026-06-14T09:00:00.000Z',
      actor: { token_id: 'tok_admin_1', scope: 'service:admin' },
      source: { ip: '127.0.0.1', user_agent: 'curl/8.5.0', request_id: 'req-create-acme' },
      details: { display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
      prev_hash: '0'.repeat(64),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      tenant_seq: '1',
      tenant_prev_hash: '0'.repeat(64),
      tenant_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  test('when filtering by vm-id, then only that VM’s entries come back in seq order', async () => {
    const result = await serviceFs(['read', '--filter', 'vm-id=vm-a1'], { databaseUrl: testDb.serviceUrl });

    expect(result.code).toBe(0);
    expect(jsonLines(result.stdout).map((e) => [e.seq, e.event_type])).toEqual([
      ['4', 'VM_SPAWN_REQUESTED'],
      ['5', 'VM_RUNNING'],
    ]);
  });

  test('when filtering by --since and --until, then since is inclusive and until exclusive', async () => {
    const result = await serviceFs(['read', '--since', '2026-06-14T09:30:00Z', '--until', '2026-06-14T11:00:05Z'], {
      databaseUrl: testDb.serviceUrl,
    });

    expect(result.code).toBe(0);
    expect(jsonLines(result.stdout).map((e) => e.seq)).toEqual(['2', '3', '4']);
  });

  test('when --limit and --order desc are given, then the newest N entries come back', async () => {
    const result = await serviceFs(['read', '--filter', 'tenant-id=acme-corp', '--limit', '2', '--order', 'desc'], {
      databaseUrl: testDb.serviceUrl,
    });

    expect(result.code).toBe(0);
    expect(jsonLines(result.stdout).map((e) => e.seq)).toEqual(['6', '5']);
  });

  test('when nothing matches, then stdout is empty, stderr says so and the exit code is 0', async () => {
    const result = await serviceFs(['read', '--filter', 'tenant-id=initech'], { databaseUrl: testDb.serviceUrl });

    expect(result).toEqual({ code: 0, stdout: '', stderr: 'service-fs: no matching entries\n' });
  });

  test('when --format table is given, then a header line precedes one row per entry', async () => {
    const result = await serviceFs(['read', '--filter', 'vm-id=vm-a1', '--format', 'table'], { databaseUrl: testDb.serviceUrl });

    expect(result.code).toBe(0);
    const lines = result.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]!.split(/\s+/)).toEqual(['SEQ', 'OCCURRED_AT', 'EVENT_TYPE', 'TENANT_ID', 'VM_ID', 'ACTOR_TOKEN', 'REQUEST_ID', 'HASH']);
    expect(lines[1]).toMatch(/^4\s+2026-06-14T11:00:00.000Z\s+VM_SPAWN_REQUESTED\s+acme-corp\s+vm-a1\s/);
    expect(lines[2]).toMatch(/^5\s+.*VM_RUNNING/);
  });

  test('when --database-url is given, then it overrides DATABASE_URL', async () => {
    const result = await serviceFs(['read', '--limit', '1', '--database-url', testDb.serviceUrl], {
      databaseUrl: 'postgres://vm_tenant_app@127.0.0.1:5432/does_not_exist_service_fs',
    });

    expect(result.code).toBe(0);
    expect(jsonLines(result.stdout).map((e) => e.seq)).toEqual(['1']);
  });

  test('when run through symlinks as npm link installs it, from another cwd, then it works', async () => {
    const prefix = await mkdtemp(path.join(tmpdir(), 'service-fs-link-'));
    try {
      await mkdir(path.join(prefix, 'lib', 'node_modules'), { recursive: true });
      await mkdir(path.join(prefix, 'bin'));
      await symlink(path.resolve(__dirname, '../..'), path.join(prefix, 'lib', 'node_modules', 'vm-tenant'));
      await symlink('../lib/node_modules/vm-tenant/bin/service-fs.js', path.join(prefix, 'bin', 'service-fs'));

      const result = await serviceFs(['read', '--event-type', 'TENANT_CREATED'], {
        command: path.join(prefix, 'bin', 'service-fs'),
        cwd: '/',
        databaseUrl: testDb.serviceUrl,
      });

      expect(result.code).toBe(0);
      expect(jsonLines(result.stdout).map((e) => e.tenant_id)).toEqual(['acme-corp', 'globex']);
    } finally {
      await rm(prefix, { recursive: true, force: true });
    }
  });

  // The parsing of each value is covered by test/unit/audit-filters.test.ts; these prove the exit path.
  test.each([
    ['an unknown flag', ['read', '--bogus'], /unknown option '--bogus'/],
    ['an unknown filter key', ['read', '--filter', 'colour=blue'], /unknown filter key "colour"/],
    ['a limit above the maximum', ['read', '--limit', '10001'], /--limit must be a whole number from 1 to 10000/],
    ['a missing flag value', ['read', '--limit'], /argument missing/],
    ['a read option on verify', ['verify', '--limit', '1'], /unknown option '--limit'/],
    ['a verify option on read', ['read', '--chain-only'], /unknown option '--chain-only'/],
    [
      'both verify modes',
      ['verify', '--chain-only', '--checkpoint-key', 'k.pem'],
      /option '--checkpoint-key <file>' cannot be used with option '--chain-only'/,
    ],
    ['an unknown command', ['list'], /unknown command 'list'/],
    ['no command', [], /missing command/],
  ])('when called with %s, then it exits 2 with a message on stderr and nothing on stdout', async (_case, args, message) => {
    // Points at a database that does not exist: usage errors must be reported before connecting.
    const result = await serviceFs(args, { databaseUrl: 'postgres://vm_tenant_app@127.0.0.1:1/nowhere' });

    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test('when --help is given, then usage is printed and the exit code is 0', async () => {
    const general = await serviceFs(['--help']);
    const read = await serviceFs(['read', '--help']);

    expect(general.code).toBe(0);
    expect(general.stdout).toMatch(/Usage: service-fs <command>/);
    expect(read.code).toBe(0);
    expect(read.stdout).toMatch(/--filter <key=value>/);
  });

  test('when the database cannot be reached, then it exits 3 with a clear message and no stack trace', async () => {
    const refused = await serviceFs(['read'], { databaseUrl: 'postgres://vm_tenant_app@127.0.0.1:1/vm_tenant' });
    const missing = await serviceFs(['verify', '--chain-only'], { databaseUrl: 'postgres://vm_tenant_app@127.0.0.1:5432/does_not_exist_service_fs' });

    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^service-fs: cannot connect to postgres:\/\/vm_tenant_app@127\.0\.0\.1:1\/vm_tenant: .*ECONNREFUSED/);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/database "does_not_exist_service_fs" does not exist/);
    for (const result of [refused, missing]) {
      expect(result.stdout).toBe('');
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

// Runs last in this file: it breaks the chain of the shared database.
describe('service-fs verify', () => {
  test('when the chain is intact, then it prints "ok: all N entries valid" and exits 0; after tampering it names the entry and exits 1', async () => {
    // The chain alone here; test/integration/ledger-checkpoints.test.ts covers the signed checkpoints.
    const clean = await serviceFs(['verify', '--chain-only'], { databaseUrl: testDb.serviceUrl });
    expect(clean).toEqual({ code: 0, stdout: 'ok: all 6 entries valid\n', stderr: '' });

    const admin = testDb.adminDb();
    await sql`alter table audit_events disable trigger user`.execute(admin);
    await sql`update audit_events set details = '{"max_vms":1000}'::jsonb where seq = 1`.execute(admin);
    await sql`alter table audit_events enable trigger user`.execute(admin);

    const tampered = await serviceFs(['verify', '--chain-only'], { databaseUrl: testDb.serviceUrl });
    expect(tampered.code).toBe(1);
    expect(tampered.stdout).toBe('bad: entry seq 1: rewrite: hash does not match the entry content (0 entries before it are valid)\n');
  });
});
