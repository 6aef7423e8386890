import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import { ledgerWritersInFlight, type LedgerWriterInFlight, type SeqHorizon } from './commit-horizon';

/** A ledger writer that holds the horizon back, as pg_stat_activity shows it (other logins' sessions show less). */
export interface LedgerWriterSession {
  pid: number | null;
  xid: string;
  application_name: string | null;
  usename: string | null;
  state: string | null;
  /** Seconds since its transaction began. */
  transaction_seconds: number | null;
  wait_event: string | null;
}

async function describeWriters(db: Kysely<Database>, writers: LedgerWriterInFlight[]): Promise<LedgerWriterSession[]> {
  const pids = writers.map((writer) => writer.pid).filter((pid): pid is number => pid !== null);
  const { rows } = await sql<Omit<LedgerWriterSession, 'xid'>>`
    select pid, application_name, usename::text, state, extract(epoch from now() - xact_start)::float8 as transaction_seconds,
           wait_event_type || ':' || wait_event as wait_event
      from pg_stat_activity where pid = any(${pids}::int[])`.execute(db);
  return writers.map((writer) => {
    const session = rows.find((row) => row.pid === writer.pid);
    return { pid: writer.pid, xid: writer.xid, application_name: null, usename: null, state: null, transaction_seconds: null, wait_event: null, ...session };
  });
}

export interface StarvationWarningsOptions {
  db: Kysely<Database>;
  log: Logger;
  /** Who reads up to the horizon, for the log lines ("ledger checkpoint signer", "event relay"). */
  reader: string;
  /** Starved this long: warn. For the signer, its signing period: past it a checkpoint is late. */
  warnAfterMs: number;
  /** While it lasts, warn again this often (default 60 s), naming the writers then in the way. */
  repeatMs?: number;
  now?: () => number;
}

/**
 * Turns a commit horizon that stays out of reach into a warning, so a starved reader is never
 * silent. The horizon (commit-horizon.ts) waits only for transactions that hold a ledger chain
 * lock, so what starves it is a ledger writer that does not end: a stuck or idle transaction of a
 * service (which idle_in_transaction_session_timeout ends), or someone holding the lock by hand.
 * The warning names them (pid, application, login, state, how long their transaction has run), and
 * an info line says when the horizon moves again.
 */
export class StarvationWarnings {
  private warnedAt: number | null = null;
  private lastStarvedMs = 0;

  constructor(private readonly options: StarvationWarningsOptions) {}

  private now(): number {
    return this.options.now ? this.options.now() : Date.now();
  }

  /** Records how long the reader has been starved (0: it reached the horizon) and warns when due. */
  async update(starvedMs: number, waitingFor: () => Promise<LedgerWriterInFlight[]>, context: Record<string, unknown> = {}): Promise<void> {
    const { log, reader, db } = this.options;
    const now = this.now();
    if (starvedMs === 0) {
      if (this.warnedAt !== null) log.info({ starved_seconds: this.lastStarvedMs / 1000 }, `${reader} no longer starved: the commit horizon advances again`);
      this.warnedAt = null;
      this.lastStarvedMs = 0;
      return;
    }
    this.lastStarvedMs = starvedMs;
    if (starvedMs < this.options.warnAfterMs || (this.warnedAt !== null && now - this.warnedAt < (this.options.repeatMs ?? 60_000))) return;
    this.warnedAt = now;
    // Named as well as can be: bare ids when pg_stat_activity cannot be read.
    const inFlight = await waitingFor().catch((): LedgerWriterInFlight[] => []);
    const writers = await describeWriters(db, inFlight).catch(() => inFlight);
    log.warn(
      { starved_seconds: starvedMs / 1000, ...context, waiting_for: writers },
      `${reader} starved: ledger writer transactions holding a chain lock have not ended, so the commit horizon cannot pass their entries`,
    );
  }
}

/** For a reader that computes the horizon itself (the event relay): starved since its first round without one. */
export class HorizonStarvationWatch {
  private since: number | null = null;
  private readonly warnings: StarvationWarnings;

  constructor(private readonly options: StarvationWarningsOptions) {
    this.warnings = new StarvationWarnings(options);
  }

  /** Records one round's horizon and returns its seq (null: starved this round). */
  async observe(horizon: SeqHorizon): Promise<string | null> {
    const now = this.options.now ? this.options.now() : Date.now();
    if (horizon.seq !== null) this.since = null;
    else this.since ??= now;
    await this.warnings.update(
      // 0 means "reached it"; a round without it counts as starved from its first millisecond.
      this.since === null ? 0 : Math.max(1, now - this.since),
      async () => (horizon.seq === null ? horizon.waitingFor : []),
      horizon.seq === null ? { drawn_seq: horizon.drawn } : {},
    );
    return horizon.seq;
  }
}

/**
 * For the checkpoint signer, which keeps its own account of starvation (LedgerCheckpointSigner.status):
 * looks every `pollMs` and warns when it has lasted a signing period, naming the ledger writers then
 * in flight. Runs beside the signer (build-worker.ts); stop() ends it.
 */
export function startSignerStarvationAlarm(
  signer: { status(): { starvedMs: number } },
  options: Omit<StarvationWarningsOptions, 'reader'> & { pollMs?: number },
): { stop(): void } {
  const warnings = new StarvationWarnings({ ...options, reader: 'ledger checkpoint signer' });
  let checking: Promise<void> | null = null;
  const timer = setInterval(() => {
    checking ??= warnings
      .update(signer.status().starvedMs, () => ledgerWritersInFlight(options.db))
      .catch((error: unknown) => options.log.warn({ err: error }, 'ledger checkpoint starvation check failed'))
      .finally(() => (checking = null));
  }, options.pollMs ?? 1_000);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
