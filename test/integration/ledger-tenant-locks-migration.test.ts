import { sql } from 'kysely';
import { verifyChain } from '../../src/ledger/chain-verifier';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { useMigrationDatabase } from '../helpers/migration-database';

const database = useMigrationDatabase('tlocks');

test('when a ledger written under the global lock is migrated, then its entries stay one global chain and new entries link within their own chain', async () => {
  expect((await database.migrator.migrateTo('2026_11_27_0006_ledger_tenant_chains')).error).toBeUndefined();
  for (const [i, tenant] of ['acme-corp', 'globex', null, 'acme-corp', 'globex'].entries()) {
    await appendAuditEvent(database.service as never, newAuditEvent({ tenant_id: tenant, details: { i } }));
  }
  const old = await database.service.selectFrom('audit_events').selectAll().orderBy('seq').execute();

  expect((await database.migrator.migrateToLatest()).error).toBeUndefined();
  expect((await sql<{ seq: string }>`select seq from ledger_global_chain_end`.execute(database.service)).rows).toEqual([{ seq: '5' }]);
  const acme = await appendAuditEvent(database.service, newAuditEvent({ tenant_id: 'acme-corp' }));
  const platform = await appendAuditEvent(database.service, newAuditEvent({ tenant_id: null }));
  // The sequence continues after the old head; prev_hash is the previous entry of the same chain.
  expect(acme).toMatchObject({ seq: '6', prev_hash: old[3]!.hash, tenant_seq: '3', tenant_prev_hash: old[3]!.tenant_hash });
  expect(platform).toMatchObject({ seq: '7', prev_hash: old[2]!.hash, tenant_seq: '2', tenant_prev_hash: old[2]!.tenant_hash });
  expect(await database.service.selectFrom('audit_events').selectAll().where('seq', '<=', '5').orderBy('seq').execute()).toEqual(old);
  expect(await verifyChain(database.service)).toMatchObject({ valid: true, checked: 7 });

  // The old entries are still checked as one global chain: removing one is a gap in seq.
  await sql`alter table audit_events disable trigger user`.execute(database.owner);
  await sql`delete from audit_events where seq = 3`.execute(database.owner);
  await sql`alter table audit_events enable trigger user`.execute(database.owner);
  expect(await verifyChain(database.service)).toMatchObject({ valid: false, first_bad_seq: '4', defect: 'gap', reason: 'sequence gap: expected 3' });
});
