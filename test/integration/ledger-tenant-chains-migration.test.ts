import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/config';
import { createDatabase } from '../../src/db/database';
import { migrations } from '../../src/db/migrations';
import type { Database } from '../../src/db/tables';
import { createScratchDatabase, withDatabase, type ScratchDatabase } from '../../src/devstack/postgres-admin';
import { GENESIS_HASH, tenantEntryHash } from '../../src/ledger/ledger-hash';
import { appendAuditEvent, verifyChain } from '../../src/ledger/ledger.repository';
import { newAuditEvent } from '../helpers/audit-event.factory';

const config = loadConfig();
let database: ScratchDatabase;
let owner: Kysely<unknown>;
let migrator: Migrator;
let service: Kysely<Database>;

beforeAll(async () => {
  database = await createScratchDatabase(config.migrationDatabaseUrl, 'vm_tenant_test_tchains', { migrate: false });
  // An idle connection ended by the server (a database dropped WITH (FORCE) elsewhere) must not
  // crash the test process: the pool without a listener would rethrow it (createPgPool does the same).
  const ownerPool = new pg.Pool({ connectionString: database.url, max: 1 });
  ownerPool.on('error', () => undefined);
  owner = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: ownerPool }) });
  migrator = new Migrator({ db: owner, provider: { getMigrations: async () => migrations } });
  service = createDatabase(withDatabase(config.databaseUrl, database.name), { max: 4 });
});

afterAll(async () => {
  await service.destroy();
  await owner.destroy();
  await database.drop();
});

test('when a ledger written before tenant chains is migrated, then every existing entry gets its tenant chain by recomputation and new entries continue it', async () => {
  const before = await migrator.migrateTo('2026_11_27_0005_ledger_chain_in_database');
  expect(before.error).toBeUndefined();
  // Written by the previous code: the global chain only, three tenants and the platform interleaved.
  const tenants = ['acme-corp', 'globex', null, 'acme-corp', 'initech', 'globex', 'acme-corp', null];
  for (const [i, tenant] of tenants.entries()) {
    await appendAuditEvent(service as never, newAuditEvent({ tenant_id: tenant, details: { i }, context: i % 2 ? { actor_scope: 'service:admin' } : {} }));
  }

  // Up to this migration: the next one (0007) links new entries per chain, see its own test.
  const after = await migrator.migrateTo('2026_11_27_0006_ledger_tenant_chains');
  expect(after.error).toBeUndefined();
  const rows = await service.selectFrom('audit_events').selectAll().orderBy('seq').execute();
  expect(rows.map((r) => [r.tenant_id, r.tenant_seq])).toEqual([
    ['acme-corp', '1'],
    ['globex', '1'],
    [null, '1'],
    ['acme-corp', '2'],
    ['initech', '1'],
    ['globex', '2'],
    ['acme-corp', '3'],
    [null, '2'],
  ]);
  expect(rows[0]!.tenant_prev_hash).toBe(GENESIS_HASH);
  expect(rows[3]!.tenant_prev_hash).toBe(rows[0]!.tenant_hash);
  expect(rows[3]!.tenant_hash).toBe(tenantEntryHash(rows[0]!.tenant_hash, rows[3]!));
  // The global chain is untouched, and a new entry extends both chains.
  const added = await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
  expect(added).toMatchObject({ seq: '9', prev_hash: rows[7]!.hash, tenant_seq: '4', tenant_prev_hash: rows[6]!.tenant_hash });
  expect((await migrator.migrateToLatest()).error).toBeUndefined(); // verifyChain reads what 0007 adds
  expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 9 });
});
