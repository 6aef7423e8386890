import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../db/tables';
import { bindToActiveContext } from '../telemetry/spans';
import { LedgerChainBusyError } from './ledger-append';

/** A state change and the ledger entries that record it, run inside a shared transaction. */
export type LedgerUnit<T> = (trx: Transaction<Database>) => Promise<T>;

interface Pending {
  unit: LedgerUnit<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown } | { deferred: true };

/**
 * A unit that gave way to another batch: its chain was busy, or Postgres chose it as a deadlock's
 * victim (its savepoint is rolled back, which releases what it locked).
 */
function mayRunAgain(error: unknown): boolean {
  return error instanceof LedgerChainBusyError || (error as { code?: string } | null)?.code === '40P01';
}

/** The event relay of this process, when it has one (the worker): woken here, not through Postgres, while it leads. */
export interface InProcessRelay {
  readonly leading: boolean;
  nudge(): void;
}

/**
 * Group commit for the ledger. Each append holds its chain's lock (its tenant's, or the platform
 * chain's) until commit; the writer runs the units that arrive while a batch is committing together
 * in the next one, so they share one commit and one WAL flush. Each unit runs in its own savepoint,
 * so one failing unit fails alone; a unit's promise settles only once its batch has committed (or
 * failed as a whole). When idle, a unit starts at once: batching costs no latency, it only appears
 * under load.
 *
 * No global lock: a batch takes the locks of the chains its units append to, in the order they
 * come. So that two batches (of two processes) cannot wait for each other's chains, a unit whose
 * chain is held elsewhere while the batch already holds another chain is not kept waiting
 * (LedgerChainBusyError, see appendAuditEvent): its savepoint is rolled back and it runs first in
 * the next batch, where it may wait. A unit that Postgres picks as a deadlock's victim (row locks
 * its units take) is run again the same way; alone in its transaction, it fails like any other.
 */
export class LedgerWriter {
  private readonly queue: Pending[] = [];
  private flushing = false;
  private relay: InProcessRelay | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly maxBatch = 64,
  ) {}

  /**
   * While `relay` leads, this writer's transactions tell the append trigger not to notify
   * (migration 2026_12_06_0014) and nudge the relay after they commit: a notification costs every
   * listening session a transaction. Should it lose the lead meanwhile, the new leader finds these
   * entries at its next poll (pollMs) or the next notification, whichever comes first.
   */
  wakeInProcess(relay: InProcessRelay): void {
    this.relay = relay;
  }

  run<T>(unit: LedgerUnit<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Bound to the caller's trace: the unit may run in the batch another caller flushed.
      this.queue.push({ unit: bindToActiveContext(unit), resolve: resolve as (value: unknown) => void, reject });
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
    if (batch.length === 1) return this.commitAlone(batch[0]!);
    const outcomes: Outcome[] = [];
    let trx;
    try {
      trx = await this.db.startTransaction().execute();
    } catch (error) {
      for (const item of batch) item.reject(error);
      return;
    }
    const wakeInProcess = this.relay?.leading === true;
    try {
      await sql`select set_config('vm_tenant.ledger_batch', 'on', true), set_config('vm_tenant.relay_woken_in_process', ${wakeInProcess ? 'on' : 'off'}, true)`.execute(
        trx,
      );
      for (const item of batch) {
        const unitTrx = await trx.savepoint('ledger_unit').execute();
        try {
          const value = await item.unit(unitTrx);
          await unitTrx.releaseSavepoint('ledger_unit').execute();
          outcomes.push({ ok: true, value });
        } catch (error) {
          await unitTrx.rollbackToSavepoint('ledger_unit').execute();
          await unitTrx.releaseSavepoint('ledger_unit').execute();
          outcomes.push(mayRunAgain(error) ? { deferred: true } : { ok: false, error });
        }
      }
      await trx.commit().execute();
      if (wakeInProcess) this.relay?.nudge();
    } catch (error) {
      await trx
        .rollback()
        .execute()
        .catch(() => undefined);
      for (const item of batch) item.reject(error);
      return;
    }
    const deferred: Pending[] = [];
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if ('deferred' in outcome) deferred.push(item);
      else if (outcome.ok) item.resolve(outcome.value);
      else item.reject(outcome.error);
    });
    this.queue.unshift(...deferred);
  }

  /**
   * A unit alone needs no savepoint (its failure rolls back the whole transaction, which holds
   * nothing else) and may wait for any chain lock: it holds no other chain for anyone to wait on.
   */
  private async commitAlone(item: Pending): Promise<void> {
    const wakeInProcess = this.relay?.leading === true;
    let value: unknown;
    try {
      value = await this.db.transaction().execute(async (trx) => {
        if (wakeInProcess) await sql`select set_config('vm_tenant.relay_woken_in_process', 'on', true)`.execute(trx);
        return item.unit(trx);
      });
    } catch (error) {
      item.reject(error);
      return;
    }
    if (wakeInProcess) this.relay?.nudge();
    item.resolve(value);
  }
}
