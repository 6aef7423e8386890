import { GENESIS_HASH, tenantEntryHash } from '../../src/ledger/ledger-hash';
import { verifyChain } from '../../src/ledger/chain-verifier';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { useMigrationDatabase } from '../helpers/migration-database';

const database = useMigrationDatabase('tchains');

test('when a ledger written before tenant chains is migrated, then every existing entry gets its tenant chain by recomputation and new entries continue it', async () => {
  const before = await database.migrator.migrateTo('2026_11_27_0005_ledger_chain_in_database');
  expect(before.error).toBeUndefined();
  // Written by the previous code: the global chain only, three tenants and the platform interleaved.
  const tenants = ['acme-corp', 'globex', null, 'acme-corp', 'initech', 'globex', 'acme-corp', null];
  for (const [i, tenant] of tenants.entries()) {
    await appendAuditEvent(
      database.service as never,
      newAuditEvent({ tenant_id: tenant, details: { i }, context: i % 2 ? { actor_scope: 'service:admin' } : {} }),
    );
  }

  // Up to this migration: the next one (0007) links new entries per chain, see its own test.
  const after = await database.migrator.migrateTo('2026_11_27_0006_ledger_tenant_chains');
  expect(after.error).toBeUndefined();
  const rows = await database.service.selectFrom('audit_events').selectAll().orderBy('seq').execute();
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
  const added = await appendAuditEvent(database.service, newAuditEvent({ tenant_id: 'acme-corp' }));
  expect(added).toMatchObject({ seq: '9', prev_hash: rows[7]!.hash, tenant_seq: '4', tenant_prev_hash: rows[6]!.tenant_hash });
  expect((await database.migrator.migrateToLatest()).error).toBeUndefined(); // verifyChain reads what 0007 adds
  expect(await verifyChain(database.service)).toMatchObject({ valid: true, checked: 9 });
});
