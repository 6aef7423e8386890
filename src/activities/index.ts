import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { FleetClient } from '../fleet/fleet-client';
import type { LedgerWriter } from '../ledger/ledger-writer';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import { createLegacyV1Activities } from './legacy/v1.activities';
import { createLegacyV2Activities } from './legacy/v2.activities';
import { createTenantActivities } from './tenant.activities';
import { createVmActivities } from './vm.activities';

export interface ActivityDeps {
  db: Kysely<Database>;
  /** The worker's one writer: every ledger entry of the process goes through its group commit. */
  ledger: LedgerWriter;
  fleet: FleetClient;
  now?: () => Date;
  bootPollMs?: number;
  metrics?: WorkerMetrics;
}

/** All activities of the tenant workflow, built from their dependencies (no module singletons). */
export function createActivities(deps: ActivityDeps) {
  const now = deps.now ?? (() => new Date());
  const bootPollMs = deps.bootPollMs ?? 100;
  const { ledger } = deps;
  return {
    ...createLegacyV1Activities({ ...deps, now, bootPollMs }),
    ...createLegacyV2Activities({ db: deps.db, ledger, now }),
    ...createTenantActivities({ db: deps.db, ledger, now }),
    ...createVmActivities({ db: deps.db, ledger, fleet: deps.fleet, now, bootPollMs, metrics: deps.metrics }),
  };
}
