import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { appendAuditEvent, verifyChain } from '../../src/ledger/ledger.repository';
import { LedgerWriter } from '../../src/ledger/ledger-writer';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

describe('ledger group commit (LedgerWriter)', () => {
  let ledgerDb: LedgerTestDatabase;
  let db: Kysely<Database>;
  beforeAll(async () => {
    ledgerDb = await createLedgerTestDatabase('writer');
    db = ledgerDb.serviceDb({ max: 5 });
  });
  afterAll(async () => {
    await ledgerDb?.drop();
  });

  test('when 60 units arrive at once, then they share fewer transactions than units and form one valid chain', async () => {
    const writer = new LedgerWriter(db);
    const txids = await Promise.all(
      Array.from({ length: 60 }, () =>
        writer.run(async (trx) => {
          await appendAuditEvent(trx, newAuditEvent());
          const { rows } = await sql<{ txid: string }>`select txid_current()::text as txid`.execute(trx);
          return rows[0]!.txid;
        }),
      ),
    );
    expect(new Set(txids).size).toBeLessThan(60);
    expect(await verifyChain(db)).toMatchObject({ valid: true });
  });

  test('when one unit of a batch fails, then it alone is rejected and the others are committed', async () => {
    const writer = new LedgerWriter(db);
    const good = [newAuditEvent(), newAuditEvent()];
    const results = await Promise.allSettled([
      writer.run((trx) => appendAuditEvent(trx, good[0]!)),
      writer.run(async (trx) => {
        await appendAuditEvent(trx, newAuditEvent());
        await sql`select 1/0`.execute(trx);
      }),
      writer.run((trx) => appendAuditEvent(trx, good[1]!)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const stored = await db.selectFrom('audit_events').select('event_id').where('event_id', 'in', good.map((e) => e.event_id)).execute();
    expect(stored).toHaveLength(2);
    expect(await verifyChain(db)).toMatchObject({ valid: true });
  });
});
