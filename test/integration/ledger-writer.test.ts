import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../src/db/tables';
import { verifyChain } from '../../src/ledger/chain-verifier';
import { appendAuditEvent, type NewAuditEvent } from '../../src/ledger/ledger-append';
import { LedgerWriter } from '../../src/ledger/ledger-writer';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

/** The id of the (top-level) transaction a unit runs in: units that share it share one commit. */
async function transactionId(trx: Transaction<Database>): Promise<string> {
  const { rows } = await sql<{ txid: string }>`select txid_current()::text as txid`.execute(trx);
  return rows[0]!.txid;
}

/** A unit that appends `event` and answers the transaction it ran in. */
const appendUnit = (event: NewAuditEvent) => async (trx: Transaction<Database>) => {
  await appendAuditEvent(trx, event);
  return transactionId(trx);
};

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

  const storedIds = async (events: NewAuditEvent[]) =>
    (
      await db
        .selectFrom('audit_events')
        .select('event_id')
        .where(
          'event_id',
          'in',
          events.map((e) => e.event_id),
        )
        .execute()
    )
      .map((row) => row.event_id)
      .sort();

  test('when 60 units arrive at once, then the first commits alone, the other 59 share one transaction, and all form one valid chain', async () => {
    const writer = new LedgerWriter(db);
    const events = Array.from({ length: 60 }, () => newAuditEvent());
    const txids = await Promise.all(events.map((event) => writer.run(appendUnit(event))));
    const unitsPerTransaction = [...new Set(txids)].map((txid) => txids.filter((t) => t === txid).length).sort((a, b) => a - b);
    expect(unitsPerTransaction).toEqual([1, 59]);
    expect(await storedIds(events)).toEqual(events.map((e) => e.event_id).sort());
    expect(await verifyChain(db)).toMatchObject({ valid: true });
  });

  test('when units of one batch fail (an SQL error, a refusal after writing), then only their writes are rolled back and the others commit together', async () => {
    const writer = new LedgerWriter(db);
    // Hold the writer busy so the units below queue up and run as one batch.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const held = writer.run(() => gate);
    const good = [newAuditEvent(), newAuditEvent(), newAuditEvent()];
    const failing = [newAuditEvent(), newAuditEvent()];
    const results = Promise.allSettled([
      writer.run(appendUnit(good[0]!)),
      writer.run(async (trx) => {
        await appendAuditEvent(trx, failing[0]!);
        await sql`select 1/0`.execute(trx);
      }),
      writer.run(appendUnit(good[1]!)),
      writer.run(async (trx) => {
        await appendAuditEvent(trx, failing[1]!);
        throw new Error('refused after writing');
      }),
      writer.run(appendUnit(good[2]!)),
    ]);
    release();
    await held;
    const settled = await results;
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    const goodTxids = settled.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    expect(new Set(goodTxids).size).toBe(1);
    expect(await storedIds(good)).toEqual(good.map((e) => e.event_id).sort());
    expect(await storedIds(failing)).toEqual([]);
    expect(await verifyChain(db)).toMatchObject({ valid: true });
  });

  test('when a unit alone fails after writing, then its writes are rolled back and the next unit commits', async () => {
    const writer = new LedgerWriter(db);
    const failing = newAuditEvent();
    await expect(
      writer.run(async (trx) => {
        await appendAuditEvent(trx, failing);
        throw new Error('refused after writing');
      }),
    ).rejects.toThrow('refused after writing');
    expect(await storedIds([failing])).toEqual([]);
    const next = newAuditEvent();
    await writer.run(appendUnit(next));
    expect(await storedIds([next])).toEqual([next.event_id]);
    expect(await verifyChain(db)).toMatchObject({ valid: true });
  });
});
