import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { migrations } from '../../src/db/migrations';
import { migrateToLatest } from '../../src/db/migrate';
import { getFreePort } from '../../src/devstack/free-port';
import { eventually } from '../helpers/eventually';

/**
 * Postgres as a managed service offers it (issue 22, item 5): a migration login that is no
 * superuser and cannot create roles or databases, the service login made beforehand with a
 * password, and the grant list docs/deploy.md documents, checked against what the migrations
 * grant on a scratch database. Also `migrate.js --wait` (the pods' init container) and a rollback.
 */
const ROOT = path.resolve(__dirname, '../..');
const SERVER = 'postgres://postgres@127.0.0.1:5432';
const suffix = randomBytes(4).toString('hex');
const database = `vmt_roles_${suffix}`;
const migrator = `vmt_migrator_${suffix}`;

jest.setTimeout(120_000);

const admin = new pg.Client({ connectionString: `${SERVER}/postgres` });
const children: ChildProcess[] = [];

/** The fenced sql block of docs/deploy.md that sets up the logins (the one creating the migration login). */
function documentedSql(): string {
  const blocks = [...readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8').matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const block = blocks.find((b) => b.includes('create role vm_tenant_migrator'));
  if (!block) throw new Error('docs/deploy.md has no sql block creating vm_tenant_migrator');
  return block;
}

/** Each `grant <privileges> on <relations> to vm_tenant_app` statement of the documented block, as relation -> sorted privileges. */
function documentedGrants(block: string): Record<string, string> {
  const grants: Record<string, Set<string>> = {};
  const statements = block
    .replace(/--.*$/gm, '')
    .split(';')
    .map((s) => s.replace(/\s+/g, ' ').trim());
  for (const statement of statements) {
    const match = /^grant (.+?) on (sequence |table )?(.+?) to vm_tenant_app$/i.exec(statement);
    if (!match || (/^usage$/i.test(match[1]!) && /^schema /i.test(match[3]!))) continue;
    for (const relation of match[3]!.split(',').map((r) => r.trim())) {
      grants[relation] ??= new Set();
      for (const privilege of match[1]!.split(',')) grants[relation].add(privilege.trim().toUpperCase());
    }
  }
  return Object.fromEntries(Object.entries(grants).map(([relation, set]) => [relation, [...set].sort().join(',')]));
}

async function query<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

function waitProcess(databaseUrl: string): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts', '--wait'], { cwd: ROOT, env: { ...process.env, DATABASE_URL: databaseUrl } });
  children.push(child);
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

beforeAll(async () => {
  await admin.connect();
  // What docs/deploy.md has an administrator run, on a scratch database and a migration login of this run.
  // vm_tenant_app exists on the shared test server (its password is not ours to change): its creation is skipped.
  const block = documentedSql()
    .replace(/vm_tenant_migrator/g, migrator)
    .replace(/\bvm_tenant\b(?!_)/g, database);
  const setup = block
    .replace(/--.*$/gm, '')
    .split(';')
    .map((s) => s.trim())
    .filter((s) => /^create (role|database)/i.test(s) && !/create role vm_tenant_app\b/i.test(s));
  expect(setup.map((s) => s.split(/\s+/).slice(0, 2).join(' '))).toEqual(['create role', 'create database']);
  for (const statement of setup) await admin.query(statement.replace(/'<[^>]*>'/g, "'pw'"));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await admin.query(`drop database if exists ${database} with (force)`);
  await admin.query(`drop role if exists ${migrator}`);
  await admin.end();
});

describe('Postgres logins for a managed server', () => {
  test('when the documented migration login runs the migrations, then it is no superuser, may create neither roles nor databases, and they succeed', async () => {
    const [role] = await query<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
      `${SERVER}/postgres`,
      `select rolsuper, rolcreaterole, rolcreatedb from pg_roles where rolname = '${migrator}'`,
    );
    expect(role).toEqual({ rolsuper: false, rolcreaterole: false, rolcreatedb: false });
    await expect(migrateToLatest(`postgres://${migrator}@127.0.0.1:5432/${database}`)).resolves.toEqual({ newerThanImage: [] });
  });

  test('when the migrations have run, then the service login holds exactly the documented grants: every table and sequence it uses, nothing more', async () => {
    const actual = await query<{ relname: string; privileges: string }>(
      `${SERVER}/${database}`,
      `select c.relname, string_agg(a.privilege_type, ',' order by a.privilege_type) as privileges
         from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
        where n.nspname = 'public' and a.grantee = 'vm_tenant_app'::regrole group by c.relname`,
    );
    const documented = documentedGrants(documentedSql());
    // The ones issue 22 found missing from the old list are in it.
    expect(Object.keys(documented)).toEqual(expect.arrayContaining(['api_rate_limits', 'http_signatures_seen', 'ledger_global_chain_end', 'audit_events_seq']));
    expect(Object.fromEntries(actual.map((row) => [row.relname, row.privileges]))).toEqual(documented);
    // Nothing the service login could change in the ledger beyond appending.
    expect(documented.audit_events).toBe('INSERT,SELECT');
  });

  test('when the documented grants are run by hand on the migrated database, then Postgres accepts every statement', async () => {
    const statements = documentedSql()
      .replace(/--.*$/gm, '')
      .split(';')
      .map((s) => s.trim())
      .filter((s) => /^grant /i.test(s));
    expect(statements.length).toBeGreaterThanOrEqual(4);
    const owner = new pg.Client({ connectionString: `postgres://${migrator}@127.0.0.1:5432/${database}` });
    await owner.connect();
    try {
      for (const statement of statements) await owner.query(statement);
    } finally {
      await owner.end();
    }
  });
});

describe('migrate.js --wait and a rollback', () => {
  test('when the database is unreachable, then --wait keeps waiting and says why; on a database short of migrations it waits; once migrated, it exits 0', async () => {
    const closed = await getFreePort();
    const unreachable = waitProcess(`postgres://vm_tenant_app@127.0.0.1:${closed}/${database}`);
    await eventually(async () => /waiting for the migrations Job.*ECONNREFUSED/.test(unreachable.output()), 20_000, 'the unreachable report');
    expect(unreachable.child.exitCode).toBeNull();
    unreachable.child.kill('SIGTERM');

    const fresh = `vmt_wait_${suffix}`;
    await admin.query(`create database ${fresh}`);
    try {
      const waiting = waitProcess(`postgres://vm_tenant_app@127.0.0.1:5432/${fresh}`);
      await eventually(async () => /waiting for the migrations Job/.test(waiting.output()), 20_000, 'the missing-migrations report');
      expect(waiting.output()).toContain(Object.keys(migrations)[0]);
      expect(waiting.child.exitCode).toBeNull();
      await migrateToLatest(`${SERVER}/${fresh}`);
      await expect(waiting.exited).resolves.toBe(0);
      expect(waiting.output()).toMatch(/the schema is the one this image needs/);
    } finally {
      await admin.query(`drop database if exists ${fresh} with (force)`);
    }
  });

  test('when a newer image has migrated the database (a rollback), then the older migrate leaves it as it is instead of failing', async () => {
    const url = `postgres://${migrator}@127.0.0.1:5432/${database}`;
    await query(url, `insert into kysely_migration (name, timestamp) values ('2999_01_01_0001_from_a_newer_image', now()::text)`);
    try {
      await expect(migrateToLatest(url)).resolves.toEqual({ newerThanImage: ['2999_01_01_0001_from_a_newer_image'] });
    } finally {
      await query(url, `delete from kysely_migration where name = '2999_01_01_0001_from_a_newer_image'`);
    }
  });
});
