import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { AuditEventRow, Database } from '../db/tables';
import { LEDGER_CHAIN_LOCK_CLASS } from './ledger-append';

/** A transaction that held a ledger chain lock when the horizon was read, and had not ended by its deadline. */
export interface LedgerWriterInFlight {
  /** Its top-level transaction id (32-bit, as pg_locks shows it). */
  xid: string;
  /** Its backend; null for a prepared transaction. */
  pid: number | null;
}

export type SeqHorizon =
  /** Every entry with a seq at or below `seq` is committed or will never exist. */
  | { seq: string }
  /** Not established within the wait: `waitingFor` still ran, holding a chain lock, when it ended. */
  | { seq: null; drawn: string; waitingFor: LedgerWriterInFlight[] };

/**
 * The highest seq up to which the ledger is final: every entry with a seq at or below it is
 * committed (and visible to a statement started afterwards) or will never exist (its transaction
 * rolled back). Appends of different chains run in parallel, so a seq drawn earlier may commit
 * after a higher one; whoever reads the ledger in seq order (the event relay, the checkpoint
 * signer) reads only up to this horizon and so never steps over an entry that commits late.
 *
 * How, in three statements (separate on purpose: each takes its snapshot when it starts):
 *
 * 1. read S, how far the sequence audit_events_seq went;
 * 2. read, from pg_locks, the top-level transaction ids of the transactions of this database that
 *    hold a ledger chain lock (advisory lock class LEDGER_CHAIN_LOCK_CLASS);
 * 3. wait (polling, holding nothing) until a new snapshot sees every one of those transactions
 *    completed (pg_visible_in_snapshot(id, pg_current_snapshot())). S is then the horizon.
 *
 * Why no entry can then commit at or below S. The chain trigger (migration 0007), which every insert
 * runs, takes its chain's lock, then gives its transaction an id, then draws the seq. So a
 * transaction T that drew a seq <= S had, before step 1, its chain lock and its id. A transaction
 * advisory lock is held until T ends, unless the subtransaction that took it rolls back, and then
 * the entry inserted under it is gone with it. So at step 2 T has ended, or it holds the lock and
 * pg_locks shows it with its id (neither lock uses the fast path, which pg_locks might report
 * apart). Step 3 ends only once a snapshot sees T completed: T's commit or rollback is then
 * visible to every later statement. A transaction that takes a chain lock after step 2 draws
 * its seq after step 1, so above S. No transaction that holds no chain lock matters: a long
 * transaction elsewhere in the cluster (Temporal's, a report's, an idle session's, in this database
 * or another) does not hold the horizon back, unlike the cluster-wide xmin that an outbox read below
 * pg_snapshot_xmin waits for. Only a ledger writer's own transaction does, and only while it runs:
 * the services set idle_in_transaction_session_timeout so that a stuck one is ended.
 *
 * The seq can only be drawn through the trigger: the service login may not call nextval on the
 * sequence. An owner or superuser who disables the trigger or draws seqs by hand is tampering, which
 * the chain and the signed checkpoints reveal (docs/audit-ledger.md).
 *
 * Waits at most `waitMs`; then returns seq null with the transactions still running. `db` must be a
 * pool: inside a transaction the snapshot, or the transaction's own chain lock, would keep the
 * horizon from ever being reached.
 */
export async function ledgerSeqHorizon(db: Kysely<Database>, waitMs = 2_000): Promise<SeqHorizon> {
  if (db.isTransaction) throw new Error('ledgerSeqHorizon needs a pool, not a transaction');
  const { rows: drawn } = await sql<{ seq: string }>`
    select (case when is_called then last_value else last_value - 1 end)::text as seq from audit_events_seq`.execute(db);
  const seq = drawn[0]!.seq;
  let waitingFor = await ledgerWritersInFlight(db);
  const deadline = Date.now() + waitMs;
  for (let pause = 1; waitingFor.length > 0; pause = Math.min(pause * 2, 50)) {
    if (Date.now() >= deadline) return { seq: null, drawn: seq, waitingFor };
    await sleep(pause);
    const running = await stillRunning(db, waitingFor);
    waitingFor = waitingFor.filter((writer) => running.has(writer.xid));
  }
  return { seq };
}

/**
 * The entries after `after`, in seq order (at most `limit`), read up to the horizon that `drawn`
 * gives: ledgerSeqHorizon's steps 2 and 3 with `drawn` as step 1, which the caller must have read
 * (how far audit_events_seq went) by a statement that ended before this call. The wait's last check
 * and the read are one statement: its snapshot, which sees every writer in flight completed, is the
 * one the read uses, so the relay pays two statements for a batch, not a horizon and then a read.
 * `horizon.seq` null: the writers did not end within `waitMs`, and nothing was read.
 */
export async function readLedgerUpToHorizon(
  db: Kysely<Database>,
  drawn: string,
  after: string,
  limit: number,
  waitMs = 2_000,
): Promise<{ horizon: SeqHorizon; rows: AuditEventRow[] }> {
  if (db.isTransaction) throw new Error('readLedgerUpToHorizon needs a pool, not a transaction');
  let waitingFor = await ledgerWritersInFlight(db);
  const deadline = Date.now() + waitMs;
  // A writer in flight is usually a few milliseconds from its commit: the first look waits that long.
  for (let pause = 3; ; pause = Math.min(pause * 2, 50)) {
    if (waitingFor.length > 0) await sleep(pause);
    const { rows } = await sql<AuditEventRow & { running: string[] }>`
      with pending as (${stillRunningQuery(waitingFor)})
      select pending.running, entry.*
        from pending
        left join lateral (
          select * from audit_events where seq > ${after}::bigint and seq <= ${drawn}::bigint and cardinality(pending.running) = 0
           order by seq limit ${limit}) entry on true`.execute(db);
    const running = new Set(rows[0]!.running);
    if (running.size === 0) {
      const entries = rows.filter((row) => row.seq !== null).map(({ running: _, ...entry }) => entry as AuditEventRow);
      return { horizon: { seq: drawn }, rows: entries };
    }
    waitingFor = waitingFor.filter((writer) => running.has(writer.xid));
    if (Date.now() >= deadline) return { horizon: { seq: null, drawn, waitingFor }, rows: [] };
  }
}

// "Completed before the snapshot was taken": below its xmin, or below its xmax and not listed as
// running (ids at or past xmax are running too). Wrong for a subtransaction's id, which pg_locks
// may also have shown: it is never listed, only its top-level id is, and that one is held, and
// waited for here, as long as the entry can commit.
function stillRunningQuery(writers: readonly LedgerWriterInFlight[]) {
  return sql<{ running: string[] }>`
    select coalesce(array_agg(held.xid::text), '{}') as running
      from unnest(${writers.map((writer) => writer.xid)}::text[]) as held(xid)
     where not pg_visible_in_snapshot(held.xid::xid8, pg_current_snapshot())`;
}

async function stillRunning(db: Kysely<Database>, writers: readonly LedgerWriterInFlight[]): Promise<Set<string>> {
  const { rows } = await stillRunningQuery(writers).execute(db);
  return new Set(rows[0]!.running);
}

/**
 * The transactions of this database that hold a ledger chain lock now, by top-level id (as xid8)
 * and backend: those that may still commit an entry whose seq was drawn. Step 2 of ledgerSeqHorizon;
 * also what a starvation warning names.
 */
export async function ledgerWritersInFlight(db: Kysely<Database>): Promise<LedgerWriterInFlight[]> {
  // One call of pg_locks (materialized), so a holder's chain lock and its id come from one reading.
  // Only a transaction's own id is held in ExclusiveLock mode; a waiter on another's id asks ShareLock.
  // pg_locks shows 32-bit ids; each is widened to the xid8 within 2^31 of the snapshot's xmax (a
  // running id always is, by wraparound protection), which step 3 needs.
  const { rows } = await sql<{ xid: string; pid: number | null }>`
    with locks as materialized (
           select locktype, database, classid, objsubid, mode, granted, virtualtransaction, transactionid, pid from pg_locks),
         horizon as (select pg_snapshot_xmax(pg_current_snapshot())::text::bigint as xmax)
    select distinct (horizon.xmax + (own.transactionid::text::bigint - horizon.xmax % 4294967296 + 6442450944) % 4294967296 - 2147483648)::text as xid,
           own.pid
      from locks chain
      join locks own on own.virtualtransaction = chain.virtualtransaction
      cross join horizon
     where chain.locktype = 'advisory' and chain.granted and chain.objsubid = 2 and chain.classid = ${LEDGER_CHAIN_LOCK_CLASS}
       and chain.database = (select oid from pg_database where datname = current_database())
       and own.locktype = 'transactionid' and own.mode = 'ExclusiveLock' and own.granted`.execute(db);
  return rows;
}

/** The horizon's seq, or null when the ledger writers in flight did not end within `waitMs` (see ledgerSeqHorizon). */
export async function committedSeqHorizon(db: Kysely<Database>, waitMs = 2_000): Promise<string | null> {
  return (await ledgerSeqHorizon(db, waitMs)).seq;
}
