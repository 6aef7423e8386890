import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { FleetClient } from '../fleet/fleet-client';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import { createTenantActivities } from './tenant.activities';
import { createVmActivities } from './vm.activities';

export interface ActivityDeps {
  db: Kysely<Database>;
  fleet: FleetClient;
  now?: () => Date;
  bootPollMs?: number;
  metrics?: WorkerMetrics;
}

/** All activities of the tenant workflow, built from their dependencies (no module singletons). */
export function createActivities(deps: ActivityDeps) {
  const now = deps.now ?? (() => new Date());
  return {
    ...createTenantActivities({ db: deps.db }),
    ...createVmActivities({ db: deps.db, fleet: deps.fleet, now, bootPollMs: deps.bootPollMs ?? 100, metrics: deps.metrics }),
  };
}
