import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import { deleteExpiredIdempotencyKeys } from '../vms/idempotency.repository';

/** Periodic clean-up the worker does on the side: Idempotency-Keys past their 24 h retention. */
export function startHousekeeping(db: Kysely<Database>, log: Logger, everyMs = 10 * 60 * 1000): { stop(): void } {
  const run = async () => {
    try {
      const purged = await deleteExpiredIdempotencyKeys(db, new Date());
      if (purged > 0) log.info({ purged }, 'expired idempotency keys purged');
    } catch (error) {
      log.warn({ err: error }, 'housekeeping failed; will retry');
    }
  };
  const timer = setInterval(() => void run(), everyMs);
  timer.unref();
  void run();
  return { stop: () => clearInterval(timer) };
}
