import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  log,
  makeContinueAsNewFunc,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { createLegacyV1Activities } from '../../activities/legacy/v1.activities';
import { FailureType } from '../../shared/failure-types';
import {
  changeQuotaUpdate,
  closeTenantUpdate,
  destroyVmUpdate,
  spawnVmUpdate,
  usageQuery,
  type QuotaExceededDetails,
  type SpawnVmRequest,
  type TenantQuota,
  type TenantUsage,
} from '../../shared/tenant-workflow.messages';
import { continueAsNewSignal } from '../../shared/tenant-workflow.versions';
import type { TenantSnapshot, TenantWorkflowInput, TrackedVm } from '../../shared/legacy/tenant-v1.state';
import type { VmStatus } from '../../shared/vm';

type Activities = ReturnType<typeof createLegacyV1Activities>;

const { loadTenantSnapshot } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// Fleet work retries until it lands: a fleet outage delays VMs, it never loses them.
const { provisionVm, destroyVm } = proxyActivities<Activities>({
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
});

const DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES = 1000;
// Well under Temporal's 10,240-event warning and 51,200-event hard limit.
const CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS = 4000;
const SETTLED_MEMORY = 2000;

/**
 * The tenant workflow as it was before state version 2 (compact state, Postgres-first admission),
 * frozen: runs started by that code replay and finish their run here, then continue as new into
 * the current code, which migrates the carried state. Do not change what this function does; delete
 * it as ./README.md says.
 */
export async function legacyTenantWorkflowV1(input: TenantWorkflowInput): Promise<void> {
  const tenantId = input.tenant_id;
  const updateLimit = input.continue_as_new_after_updates ?? DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES;
  const vms = new Map<string, TrackedVm>();
  const settled = new Map<string, VmStatus>();
  let quota: TenantQuota = { max_vms: 0, storage_quota_gb: 0 };
  let closed = false;
  let loaded = false;
  let updatesThisRun = 0;

  const storageInUse = () => [...vms.values()].reduce((sum, vm) => sum + vm.storage_gb, 0);
  const usage = (): TenantUsage => ({
    tenant_id: tenantId,
    vms: vms.size,
    storage_gb: storageInUse(),
    max_vms: quota.max_vms,
    storage_quota_gb: quota.storage_quota_gb,
    provisioning: [...vms.values()].filter((vm) => vm.phase === 'provisioning').length,
    destroying: [...vms.values()].filter((vm) => vm.destroy !== null).length,
    closed,
    run_updates: updatesThisRun,
  });

  // Shown in the Temporal UI ("Current details") so operators see usage without querying.
  const showUsage = () => {
    const u = usage();
    setCurrentDetails(
      `**Tenant ${tenantId}**${closed ? ' (closed)' : ''}\n\n` +
        `VMs: ${u.vms} / ${u.max_vms} (provisioning ${u.provisioning}, destroying ${u.destroying})\n\n` +
        `Storage: ${u.storage_gb} / ${u.storage_quota_gb} GB`,
    );
  };

  const quotaRefusal = (request: SpawnVmRequest): ApplicationFailure | null => {
    const refuse = (details: QuotaExceededDetails) =>
      ApplicationFailure.create({ type: FailureType.QuotaExceeded, message: `quota exceeded: ${details.limit}`, details: [details], nonRetryable: true });
    if (vms.size + 1 > quota.max_vms) return refuse({ limit: 'max_vms', limit_value: quota.max_vms, in_use: vms.size, requested: 1 });
    const storage = storageInUse();
    if (storage + request.shape.storage_gb > quota.storage_quota_gb) {
      return refuse({ limit: 'storage_quota_gb', limit_value: quota.storage_quota_gb, in_use: storage, requested: request.shape.storage_gb });
    }
    return null;
  };
  const closedRefusal = () => ApplicationFailure.create({ type: FailureType.TenantClosed, message: `tenant ${tenantId} is closed`, nonRetryable: true });

  const settle = (vmId: string, status: VmStatus) => {
    vms.delete(vmId);
    settled.set(vmId, status);
    if (settled.size > SETTLED_MEMORY) settled.delete(settled.keys().next().value!);
    showUsage();
  };

  const runDestroy = async (vm: TrackedVm): Promise<void> => {
    vm.phase = 'destroying';
    await destroyVm({ tenant_id: tenantId, vm_id: vm.vm_id, context: vm.destroy?.context ?? vm.spawn.context });
    settle(vm.vm_id, 'destroyed');
  };

  const runSpawn = async (vm: TrackedVm): Promise<void> => {
    const outcome = await provisionVm({ tenant_id: tenantId, request: vm.spawn });
    if (outcome.status === 'failed') {
      // A VM the fleet refused or could not boot releases its quota; a pending destroy has nothing left to do.
      settle(vm.vm_id, 'failed');
      return;
    }
    vm.phase = 'running';
    showUsage();
    if (vm.destroy) await runDestroy(vm);
  };

  const launch = (work: Promise<void>, vmId: string) => {
    work.catch((error: unknown) => log.error('VM work failed unexpectedly', { vm_id: vmId, error: String(error) }));
  };

  setHandler(usageQuery, usage);
  // The one change since the freeze, replay-safe (a history without the signal replays as before):
  // the upgrade procedure asks the run to continue as new into the current code (docs/upgrades.md).
  let continueAsNewAsked = false;
  setHandler(continueAsNewSignal, () => void (continueAsNewAsked = true));

  setHandler(
    spawnVmUpdate,
    async (request) => {
      await condition(() => loaded);
      if (closed) throw closedRefusal();
      const known = vms.get(request.vm_id);
      if (known) return { vm_id: known.vm_id, status: known.destroy ? 'destroying' : known.phase };
      const done = settled.get(request.vm_id);
      if (done) return { vm_id: request.vm_id, status: done };
      // Check and reserve with no await in between: this is the quota's atomic step.
      const refusal = quotaRefusal(request);
      if (refusal) throw refusal;
      const vm: TrackedVm = { vm_id: request.vm_id, storage_gb: request.shape.storage_gb, phase: 'provisioning', spawn: request, destroy: null };
      vms.set(vm.vm_id, vm);
      updatesThisRun++;
      showUsage();
      launch(runSpawn(vm), vm.vm_id);
      return { vm_id: vm.vm_id, status: 'provisioning' };
    },
    {
      // Refusing in the validator keeps rejected bursts out of the history entirely; the handler re-checks.
      validator: (request) => {
        if (!loaded) return;
        if (closed) throw closedRefusal();
        if (vms.has(request.vm_id) || settled.has(request.vm_id)) return;
        const refusal = quotaRefusal(request);
        if (refusal) throw refusal;
      },
    },
  );

  setHandler(destroyVmUpdate, async ({ vm_id, context }) => {
    await condition(() => loaded);
    const vm = vms.get(vm_id);
    if (!vm) {
      const done = settled.get(vm_id);
      if (done) return { vm_id, status: done };
      throw ApplicationFailure.create({ type: FailureType.VmNotFound, message: `no VM ${vm_id} in tenant ${tenantId}`, nonRetryable: true });
    }
    updatesThisRun++;
    if (vm.destroy) return { vm_id, status: 'destroying' };
    vm.destroy = { context };
    showUsage();
    // A VM still provisioning is destroyed as soon as its spawn settles (see runSpawn).
    if (vm.phase === 'running') launch(runDestroy(vm), vm_id);
    return { vm_id, status: 'destroying' };
  });

  setHandler(changeQuotaUpdate, async (request) => {
    await condition(() => loaded);
    updatesThisRun++;
    // Lowering a quota below current use refuses new spawns and destroys nothing.
    quota = { max_vms: request.quota.max_vms, storage_quota_gb: request.quota.storage_quota_gb };
    showUsage();
    return usage();
  });

  setHandler(closeTenantUpdate, async () => {
    await condition(() => loaded);
    updatesThisRun++;
    if (vms.size > 0) {
      throw ApplicationFailure.create({ type: FailureType.TenantHasVms, message: `tenant ${tenantId} still has ${vms.size} VMs`, nonRetryable: true });
    }
    closed = true;
    showUsage();
    return usage();
  });

  const snapshot: TenantSnapshot = input.carried ?? (await loadTenantSnapshot({ tenant_id: tenantId }));
  quota = snapshot.quota;
  closed = snapshot.closed;
  for (const vm of snapshot.vms) vms.set(vm.vm_id, vm);
  for (const [vmId, status] of snapshot.settled) settled.set(vmId, status);
  loaded = true;
  showUsage();

  // Resume the work the previous run (or a lost workflow) left in flight; the activities are idempotent.
  for (const vm of vms.values()) {
    if (vm.phase === 'provisioning') launch(runSpawn(vm), vm.vm_id);
    else if (vm.phase === 'destroying' || vm.destroy) launch(runDestroy(vm), vm.vm_id);
  }

  const shouldContinueAsNew = () =>
    continueAsNewAsked ||
    updatesThisRun >= updateLimit ||
    workflowInfo().continueAsNewSuggested ||
    workflowInfo().historyLength >= CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS;

  await condition(() => (closed && vms.size === 0) || shouldContinueAsNew());
  await condition(allHandlersFinished);
  if (closed && vms.size === 0) return;

  // Carry the operator-facing metadata explicitly rather than rely on server defaults.
  const info = workflowInfo();
  const continueTenantAsNew = makeContinueAsNewFunc<typeof legacyTenantWorkflowV1>({ typedSearchAttributes: info.typedSearchAttributes, memo: info.memo });
  await continueTenantAsNew({
    tenant_id: tenantId,
    continue_as_new_after_updates: input.continue_as_new_after_updates,
    carried: { quota, closed, vms: [...vms.values()], settled: [...settled.entries()] },
  });
}
