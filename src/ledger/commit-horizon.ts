import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';

/**
 * The highest seq up to which the ledger is final: every entry with a seq at or below it is
 * committed (and visible to a statement started afterwards) or will never exist (its transaction
 * rolled back). Appends of different chains run in parallel, so a seq drawn earlier may commit
 * after a higher one; whoever reads the ledger in seq order (the event relay, the checkpoint
 * signer) reads only up to this horizon and so never steps over an entry that commits late.
 *
 * How: the chain trigger gives its transaction an id (pg_current_xact_id) before it draws a seq.
 * So every seq the sequence had handed out when it was read belongs to a transaction whose id is
 * below the xmax of a snapshot taken after that read; once the oldest running transaction (xmin)
 * is at or past that xmax, all of them have ended. Like an outbox read below
 * pg_snapshot_xmin(pg_current_snapshot()), but keyed on seq, so ledger order stays seq order.
 * The two reads are separate statements on purpose: a statement's snapshot is taken before it runs.
 *
 * Waits (polling, without holding anything) at most `waitMs` for the transactions to end; returns
 * null when they have not, e.g. behind a long transaction (any transaction with an id, in any
 * database of the cluster, holds xmin back). `db` must be a pool: inside a transaction the
 * snapshot, or the transaction's own id, would keep the horizon from ever being reached.
 */
export async function committedSeqHorizon(db: Kysely<Database>, waitMs = 2_000): Promise<string | null> {
  if (db.isTransaction) throw new Error('committedSeqHorizon needs a pool, not a transaction');
  const { rows: drawn } = await sql<{ seq: string }>`
    select (case when is_called then last_value else last_value - 1 end)::text as seq from audit_events_seq`.execute(db);
  const { rows: snapshot } = await sql<{ xmax: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as xmax`.execute(db);
  const seq = drawn[0]!.seq;
  const xmax = snapshot[0]!.xmax;
  const deadline = Date.now() + waitMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 50)) {
    const { rows } = await sql<{ ended: boolean }>`select pg_snapshot_xmin(pg_current_snapshot()) >= ${xmax}::xid8 as ended`.execute(db);
    if (rows[0]!.ended) return seq;
    if (Date.now() >= deadline) return null;
    await sleep(pause);
  }
}
