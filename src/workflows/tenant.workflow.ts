import { allHandlersFinished, condition, makeContinueAsNewFunc, patched, setHandler, workflowInfo } from '@temporalio/workflow';
import { changeQuotaUpdate, closeTenantUpdate, destroyVmUpdate, spawnVmUpdate, usageQuery } from '../shared/tenant-workflow.messages';
import type { TenantLimits, TenantWorkflowInput } from '../shared/tenant-workflow.state';
import { ADMISSION_V3_PATCH, continueAsNewSignal, TENANT_STATE_V2_PATCH } from '../shared/tenant-workflow.versions';
import { legacyTenantWorkflowV1 } from './legacy/tenant-v1';
import { legacyTenantWorkflowV2 } from './legacy/tenant-v2';
import { TenantRun } from './tenant-run';

export const DEFAULT_LIMITS: TenantLimits = {
  // Temporal refuses to schedule more than 2,000 pending activities per workflow; each VM in flight
  // is one. 1,000 also keeps the carried state near 200 KB, well under the 2 MiB payload limit.
  max_in_flight: 1000,
  boot_timeout_ms: 15 * 60_000,
};
const DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES = 1000;

/**
 * One workflow per tenant, id `tenant-<tenant_id>`: the serialisation point for the tenant's spawns
 * and destroys. The API records each request in Postgres first (`requested`); the spawn update then
 * decides it in one synchronous step (check and reserve, no await, no local activity), and that
 * decision, durable in the workflow's history, is the only thing that lets a row hold quota: the
 * boot activity's first step confirms the row. Protocol and invariants: docs/admission-protocol.md.
 *
 * Runs started by older code replay on it, frozen in ./legacy until the upgrade procedure has moved
 * every run to the current code (docs/upgrades.md).
 */
export async function tenantWorkflow(input: TenantWorkflowInput): Promise<void> {
  if (!patched(TENANT_STATE_V2_PATCH)) return legacyTenantWorkflowV1(input as Parameters<typeof legacyTenantWorkflowV1>[0]);
  if (!patched(ADMISSION_V3_PATCH)) return legacyTenantWorkflowV2(input);
  return runTenant(input);
}

/** A run of the current code: handlers into TenantRun, the state loaded, the work resumed, then closed or continued as new. */
async function runTenant(input: TenantWorkflowInput): Promise<void> {
  const limits: TenantLimits = { ...DEFAULT_LIMITS, ...input.limits };
  const run = new TenantRun(input.tenant_id, limits, input.continue_as_new_after_updates ?? DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES);

  setHandler(usageQuery, () => run.usage());
  setHandler(spawnVmUpdate, (request) => run.spawn(request), { validator: (request) => run.validateSpawn(request) });
  setHandler(destroyVmUpdate, (request) => run.destroy(request), { validator: (request) => run.validateDestroy(request) });
  setHandler(changeQuotaUpdate, (request) => run.changeQuota(request));
  setHandler(closeTenantUpdate, (request) => run.close(request));
  setHandler(continueAsNewSignal, () => run.askContinueAsNew());

  const state = await run.load(input.carried);
  run.showUsage();
  run.resumeWork(state);

  await condition(() => run.isFinished(state) || run.shouldContinueAsNew());
  // Never while an update is being handled or waits to be: each would lose its answer.
  await condition(allHandlersFinished);
  if (run.isFinished(state)) return;

  // Carry the operator-facing metadata explicitly rather than rely on server defaults.
  const info = workflowInfo();
  const continueTenantAsNew = makeContinueAsNewFunc<typeof tenantWorkflow>({ typedSearchAttributes: info.typedSearchAttributes, memo: info.memo });
  await continueTenantAsNew({
    tenant_id: input.tenant_id,
    continue_as_new_after_updates: input.continue_as_new_after_updates,
    limits: input.limits,
    carried: state.toCarried(),
  });
}
