import type { ActivityDeps } from '.';
import { createLegacyTenantActivities } from './legacy-v1.tenant.activities';
import { createLegacyVmActivities } from './legacy-v1.vm.activities';

/**
 * The activities of tenant-workflow runs started before state version 2, unchanged, so such runs
 * finish their current run as they began it. Remove with src/workflows/legacy/tenant-v1.ts.
 */
export function createLegacyV1Activities(deps: ActivityDeps & { now: () => Date; bootPollMs: number }) {
  return {
    ...createLegacyTenantActivities({ db: deps.db }),
    ...createLegacyVmActivities({ db: deps.db, ledger: deps.ledger, fleet: deps.fleet, now: deps.now, bootPollMs: deps.bootPollMs, metrics: deps.metrics }),
  };
}
