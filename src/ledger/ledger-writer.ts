import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/tables';
import { LEDGER_LOCK_KEY } from './ledger.repository';

/** A state change and the ledger entries that record it, run inside a shared transaction. */
export type LedgerUnit<T> = (trx: Transaction<Database>) => Promise<T>;

interface Pending {
  unit: LedgerUnit<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for the ledger. Every append to the single hash chain holds one lock until its
 * commit, so appends, and their WAL flushes, run one after another. The writer runs the units that
 * arrive while a batch is committing together in the next one: one lock, one flush for all of
 * them. Each unit runs in its own savepoint, so one failing unit fails alone; a unit's promise
 * settles only once its batch has committed (or failed as a whole). When idle, a unit starts at
 * once: batching costs no latency, it only appears under load.
 */
export class LedgerWriter {
  private readonly queue: Pending[] = [];
  private flushing = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 64,
  ) {}

  run<T>(unit: LedgerUnit<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ unit, resolve: resolve as (value: unknown) => void, reject });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) await this.commit(this.queue.splice(0, this.maxBatch));
    } finally {
      this.flushing = false;
    }
  }

  private async commit(batch: Pending[]): Promise<void> {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    let trx;
    try {
      trx = await this.db.startTransaction().execute();
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    try {
      // The chain lock first, before any row lock a unit takes: the same order as every appender.
      await sql`select pg_advisory_xact_lock(${LEDGER_LOCK_KEY})`.execute(trx);
      for (const item of batch) {
        const unitTrx = await trx.savepoint('ledger_unit').execute();
        try {
          const value = await item.unit(unitTrx);
          await unitTrx.releaseSavepoint('ledger_unit').execute();
          outcomes.push({ ok: true, value });
        } catch (error) {
          await unitTrx.rollbackToSavepoint('ledger_unit').execute();
          await unitTrx.releaseSavepoint('ledger_unit').execute();
          outcomes.push({ ok: false, error });
        }
      }
      await trx.commit().execute();
    } catch (error) {
      await trx.rollback().execute().catch(() => undefined);
      for (const item of batch) item.reject(error);
      return;
    }
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
  }
}
