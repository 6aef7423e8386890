import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { deleteExpiredSignatures } from '../auth/seen-signature.repository';
import { deleteExpiredIdempotencyKeys } from '../vms/idempotency.repository';
import { resendUnsettledVms } from './resend-unsettled-vms';

// Longer than any admission or destroy request takes, shorter than anyone waits for a VM.
const UNSETTLED_AFTER_MS = 5 * 60 * 1000;

/**
 * Periodic work the worker does on the side: Idempotency-Keys past their 24 h retention and request
 * signatures too old to be replayed are purged, and VMs left unsettled by a workflow that lost their
 * update are sent to it again.
 */
export function startHousekeeping(db: Kysely<Database>, log: Logger, workflows?: TenantWorkflowGateway, everyMs = 5 * 60 * 1000): { stop(): void } {
  const run = async () => {
    try {
      const purged = await deleteExpiredIdempotencyKeys(db, new Date());
      if (purged > 0) log.info({ purged }, 'expired idempotency keys purged');
      const signatures = await deleteExpiredSignatures(db, new Date());
      if (signatures > 0) log.info({ purged: signatures }, 'expired request signatures purged');
      if (workflows) {
        const resent = await resendUnsettledVms({ db, workflows, log, now: new Date(), olderThanMs: UNSETTLED_AFTER_MS });
        if (resent.spawns + resent.destroys + resent.failed > 0) log.info(resent, 'unsettled VMs sent to their workflows again');
      }
    } catch (error) {
      log.warn({ err: error }, 'housekeeping failed; will retry');
    }
  };
  const timer = setInterval(() => void run(), everyMs);
  timer.unref();
  void run();
  return { stop: () => clearInterval(timer) };
}
