import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import { deleteExpiredSignatures } from '../auth/seen-signature.repository';
import { deleteEntryTracesBefore } from '../ledger/entry-trace.repository';
import { deleteExpiredIdempotencyKeys } from '../vms/idempotency.repository';

/**
 * Periodic work the worker does on the side: Idempotency-Keys past their 24 h retention and request
 * signatures too old to be replayed are purged. (Undecided VMs are the admission resolver's.)
 */
export function startHousekeeping(db: Kysely<Database>, log: Logger, everyMs = 5 * 60 * 1000): { stop(): void } {
  const run = async () => {
    try {
      const purged = await deleteExpiredIdempotencyKeys(db, new Date());
      if (purged > 0) log.info({ purged }, 'expired idempotency keys purged');
      const signatures = await deleteExpiredSignatures(db, new Date());
      if (signatures > 0) log.info({ purged: signatures }, 'expired request signatures purged');
      // The trace of an entry is kept a day: its event goes out within seconds (docs/tracing.md).
      await deleteEntryTracesBefore(db, new Date(Date.now() - 24 * 3600_000));
    } catch (error) {
      log.warn({ err: error }, 'housekeeping failed; will retry');
    }
  };
  const timer = setInterval(() => void run(), everyMs);
  timer.unref();
  void run();
  return { stop: () => clearInterval(timer) };
}
