import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { entryHash, GENESIS_HASH, tenantEntryHash } from '../../src/ledger/ledger-hash';

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

/**
 * Recomputes prev_hash and hash of every entry from `fromSeq` on, and every tenant chain, as a
 * careful attacker would: afterwards the stored chains verify again. Up to ledger_global_chain_end
 * entries link to the previous entry overall, after it to the previous entry of their own chain.
 */
export async function rechainFrom(trx: Kysely<Database>, fromSeq: number): Promise<void> {
  const { rows: end } = await sql<{ seq: string }>`select seq from ledger_global_chain_end`.execute(trx);
  const globalChainEnd = Number(end[0]?.seq ?? 0);
  // Out of the way first: the tenant chain index is unique, and rows are renumbered one by one.
  await sql`update audit_events set tenant_seq = -seq`.execute(trx);
  const rows = await trx.selectFrom('audit_events').selectAll().orderBy('seq').execute();
  let globalPrev = GENESIS_HASH;
  const tenantHeads = new Map<string, { seq: number; hash: string; entryHash: string }>();
  for (const row of rows) {
    const chain = row.tenant_id ?? '';
    const head = tenantHeads.get(chain) ?? { seq: 0, hash: GENESIS_HASH, entryHash: GENESIS_HASH };
    const prev = Number(row.seq) <= globalChainEnd ? globalPrev : head.entryHash;
    const hash = Number(row.seq) >= fromSeq ? entryHash(prev, row) : row.hash;
    const tenantSeq = String(head.seq + 1);
    const tenantHash = tenantEntryHash(head.hash, { ...row, tenant_seq: tenantSeq });
    await sql`update audit_events set prev_hash = ${prev}, hash = ${hash}, tenant_seq = ${tenantSeq}, tenant_prev_hash = ${head.hash}, tenant_hash = ${tenantHash}
              where seq = ${row.seq}`.execute(trx);
    tenantHeads.set(chain, { seq: head.seq + 1, hash: tenantHash, entryHash: hash });
    globalPrev = hash;
  }
}

/** Moves every entry from `fromSeq` on one place up, leaving `fromSeq` free for a forged entry. */
export async function shiftUpFrom(trx: Kysely<Database>, fromSeq: number): Promise<void> {
  // Two steps: a single `seq = seq + 1` collides with the primary key row by row.
  await sql`update audit_events set seq = -seq where seq >= ${fromSeq}`.execute(trx);
  await sql`update audit_events set seq = -seq + 1 where seq < 0`.execute(trx);
}
