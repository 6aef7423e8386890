import { Kysely, Migrator, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/config';
import { createDatabase } from '../../src/db/database';
import { migrations } from '../../src/db/migrations';
import type { Database } from '../../src/db/tables';
import { createScratchDatabase, withDatabase, type ScratchDatabase } from '../../src/devstack/postgres-admin';
import { appendAuditEvent, verifyChain } from '../../src/ledger/ledger.repository';
import { newAuditEvent } from '../helpers/audit-event.factory';

const config = loadConfig();
let database: ScratchDatabase;
let owner: Kysely<unknown>;
let migrator: Migrator;
let service: Kysely<Database>;

beforeAll(async () => {
  database = await createScratchDatabase(config.migrationDatabaseUrl, 'vm_tenant_test_tlocks', { migrate: false });
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

test('when a ledger written under the global lock is migrated, then its entries stay one global chain and new entries link within their own chain', async () => {
  expect((await migrator.migrateTo('2026_11_27_0006_ledger_tenant_chains')).error).toBeUndefined();
  for (const [i, tenant] of ['acme-corp', 'globex', null, 'acme-corp', 'globex'].entries()) {
    await appendAuditEvent(service as never, newAuditEvent({ tenant_id: tenant, details: { i } }));
  }
  const old = await service.selectFrom('audit_events').selectAll().orderBy('seq').execute();

  expect((await migrator.migrateToLatest()).error).toBeUndefined();
  expect((await sql<{ seq: string }>`select seq from ledger_global_chain_end`.execute(service)).rows).toEqual([{ seq: '5' }]);
  const acme = await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
  const platform = await appendAuditEvent(service, newAuditEvent({ tenant_id: null }));
  // The sequence continues after the old head; prev_hash is the previous entry of the same chain.
  expect(acme).toMatchObject({ seq: '6', prev_hash: old[3]!.hash, tenant_seq: '3', tenant_prev_hash: old[3]!.tenant_hash });
  expect(platform).toMatchObject({ seq: '7', prev_hash: old[2]!.hash, tenant_seq: '2', tenant_prev_hash: old[2]!.tenant_hash });
  expect(await service.selectFrom('audit_events').selectAll().where('seq', '<=', '5').orderBy('seq').execute()).toEqual(old);
  expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 7 });

  // The old entries are still checked as one global chain: removing one is a gap in seq.
  await sql`alter table audit_events disable trigger user`.execute(owner);
  await sql`delete from audit_events where seq = 3`.execute(owner);
  await sql`alter table audit_events enable trigger user`.execute(owner);
  expect(await verifyChain(service)).toMatchObject({ valid: false, first_bad_seq: '4', defect: 'gap', reason: 'sequence gap: expected 3' });
});
