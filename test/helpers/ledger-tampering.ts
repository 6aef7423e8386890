import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { entryHash, GENESIS_HASH } from '../../src/ledger/ledger-hash';

/**
 * What an attacker with the owner or a superuser login can do to the ledger: work with the
 * triggers disabled, and recompute every hash from some entry on so the chain verifies again.
 */
export async function withTriggersDisabled(admin: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
  await admin.transaction().execute(async (trx) => {
    await sql`alter table audit_events disable trigger user`.execute(trx);
    await work(trx);
    await sql`alter table audit_events enable trigger user`.execute(trx);
  });
}

/** Recomputes prev_hash and hash of every entry from `fromSeq` on, as a careful attacker would. */
export async function rechainFrom(trx: Kysely<Database>, fromSeq: number): Promise<void> {
  const rows = await trx.selectFrom('audit_events').selectAll().where('seq', '>=', String(fromSeq - 1)).orderBy('seq').execute();
  let prev = fromSeq === 1 ? GENESIS_HASH : rows.shift()!.hash;
  for (const row of rows) {
    const hash = entryHash(prev, row);
    await sql`update audit_events set prev_hash = ${prev}, hash = ${hash} where seq = ${row.seq}`.execute(trx);
    prev = hash;
  }
}

/** Moves every entry from `fromSeq` on one place up, leaving `fromSeq` free for a forged entry. */
export async function shiftUpFrom(trx: Kysely<Database>, fromSeq: number): Promise<void> {
  // Two steps: a single `seq = seq + 1` collides with the primary key row by row.
  await sql`update audit_events set seq = -seq where seq >= ${fromSeq}`.execute(trx);
  await sql`update audit_events set seq = -seq + 1 where seq < 0`.execute(trx);
}
