import {
  ActivityCancellationType,
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  makeContinueAsNewFunc,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { FailureType } from '../shared/failure-types';
import {
  changeQuotaUpdate,
  closeTenantUpdate,
  destroyVmUpdate,
  spawnVmUpdate,
  usageQuery,
  type TenantUsage,
} from '../shared/tenant-workflow.messages';
import type { CarriedTenantStateV2 } from '../shared/legacy/tenant-v2.state';
import type { InFlightVm, TenantLimits, TenantWorkflowInput } from '../shared/tenant-workflow.state';
import { legacyTenantWorkflowV1 } from './legacy/tenant-v1';
import { legacyTenantWorkflowV2 } from './legacy/tenant-v2';
import { causeOf, TenantState, type SpawnRefusal } from './tenant-state';

type Activities = ReturnType<typeof createActivities>;

/** Runs started before this patch replay (and finish their run) on the frozen version-1 code. */
export const TENANT_STATE_V2_PATCH = 'tenant-state-v2';
/** Runs started before this patch replay on the frozen version-2 code (admission by local activity). */
export const ADMISSION_V3_PATCH = 'admission-v3';

export const DEFAULT_LIMITS: TenantLimits = {
  // Temporal refuses to schedule more than 2,000 pending activities per workflow; each VM in flight
  // is one. 1,000 also keeps the carried state near 200 KB, well under the 2 MiB payload limit.
  max_in_flight: 1000,
  boot_timeout_ms: 15 * 60_000,
};
const DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES = 1000;
// Well under Temporal's 10,240-event warning; small enough that a worker replays it in well under
// the 10 s workflow task timeout on a busy machine.
const CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS = 2000;
const READ_PAGE = 500;
// A boot scheduled this close to (or past) its deadline still gets one short attempt.
const MIN_BOOT_WINDOW_MS = 1000;
// Past the API's Temporal deadline: a request still undecided this long after a rebuild has nobody waiting on it.
const PENDING_GRACE_MS = 15_000;

const { loadTenantForRebuild, readAdmissionEpoch, readVmStatuses, recordTenantDeleted } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// Fleet work retries until it lands: a fleet outage delays a destroy, it never loses it.
const { teardownVm, failVm, abandonAdmission } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
});

/**
 * One workflow per tenant, id `tenant-<tenant_id>`: the serialisation point for the tenant's spawns
 * and destroys. The API records each request in Postgres first (`requested`); the spawn update then
 * decides it in one synchronous step (check and reserve, no await, no local activity), and that
 * decision, durable in the workflow's history, is the only thing that lets a row hold quota: the
 * boot activity's first step confirms the row. Protocol and invariants: docs/admission-protocol.md.
 */
export async function tenantWorkflow(input: TenantWorkflowInput): Promise<void> {
  if (!patched(TENANT_STATE_V2_PATCH)) return legacyTenantWorkflowV1(input as Parameters<typeof legacyTenantWorkflowV1>[0]);
  if (!patched(ADMISSION_V3_PATCH)) return legacyTenantWorkflowV2(input);
  return runTenant(input);
}

async function runTenant(input: TenantWorkflowInput): Promise<void> {
  const tenantId = input.tenant_id;
  const limits: TenantLimits = { ...DEFAULT_LIMITS, ...input.limits };
  const updateLimit = input.continue_as_new_after_updates ?? DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES;

  let state: TenantState | undefined;
  let updatesThisRun = 0;
  const cancelBoot = new Map<string, () => void>();

  const loaded = async (): Promise<TenantState> => {
    await condition(() => state !== undefined);
    return state!;
  };
  const usage = (): TenantUsage =>
    state?.usage(updatesThisRun) ?? { tenant_id: tenantId, vms: 0, storage_gb: 0, max_vms: 0, storage_quota_gb: 0, provisioning: 0, destroying: 0, closed: false, run_updates: 0 };
  // Shown in the Temporal UI ("Current details") so operators see usage without querying.
  const showUsage = () => {
    const u = usage();
    setCurrentDetails(
      `**Tenant ${tenantId}**${u.closed ? ' (closed)' : ''}\n\n` +
        `VMs: ${u.vms} / ${u.max_vms} (provisioning ${u.provisioning}, destroying ${u.destroying})\n\n` +
        `Storage: ${u.storage_gb} / ${u.storage_quota_gb} GB`,
    );
  };
  const launch = (work: Promise<void>, vmId: string) => {
    work.catch((error: unknown) => log.error('VM work failed unexpectedly', { vm_id: vmId, error: String(error) }));
  };

  const teardown = async (s: TenantState, vm: InFlightVm): Promise<void> => {
    const outcome = await teardownVm({ tenant_id: tenantId, vm_id: vm.vm_id, cause: vm.cause });
    if (vm.release === 'if_released') vm.storage_gb = outcome.storage_gb;
    s.settle(vm.vm_id, 'destroyed', outcome.released);
    showUsage();
  };

  const fail = async (s: TenantState, vm: InFlightVm, reason: string): Promise<void> => {
    const outcome = await failVm({ tenant_id: tenantId, vm_id: vm.vm_id, reason, cause: vm.cause, epoch: s.epoch ?? 0 });
    s.settle(vm.vm_id, 'failed', outcome.released);
    showUsage();
  };

  const abandon = async (s: TenantState, vm: InFlightVm): Promise<void> => {
    const outcome = await abandonAdmission({ tenant_id: tenantId, vm_id: vm.vm_id, cause: vm.cause, epoch: s.epoch ?? 0 });
    s.settle(vm.vm_id, 'failed', outcome.released);
    showUsage();
  };

  /** Boots an admitted VM, within the deadline it got at admission (kept across continue-as-new). */
  const provision = async (s: TenantState, vm: InFlightVm): Promise<void> => {
    const deadline = vm.boot_deadline_ms ?? Date.now() + limits.boot_timeout_ms;
    const { bootVm } = proxyActivities<Activities>({
      scheduleToCloseTimeout: Math.max(MIN_BOOT_WINDOW_MS, deadline - Date.now()),
      heartbeatTimeout: '10 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
      // A destroy waits until the boot attempt has stopped, so the fleet hears the destroy last.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    if (Date.now() >= deadline) {
      vm.failure = 'boot_timeout';
      return fail(s, vm, vm.failure);
    }
    const scope = new CancellationScope();
    cancelBoot.set(vm.vm_id, () => scope.cancel());
    let failure: string | null = null;
    try {
      const outcome = await scope.run(() => bootVm({ tenant_id: tenantId, vm_id: vm.vm_id, cause: vm.cause, epoch: s.epoch ?? 0 }));
      if (outcome.status === 'destroy_requested') vm.phase = 'destroying';
      failure = outcome.status === 'failed' ? (outcome.failure_reason ?? 'boot_failed') : null;
    } catch (error) {
      if (!isCancellation(error)) failure = isBootTimeout(error) ? 'boot_timeout' : 'boot_error';
    } finally {
      cancelBoot.delete(vm.vm_id);
    }
    if (vm.phase === 'destroying') return teardown(s, vm);
    if (failure) {
      // Carried across continue-as-new: the next run fails it, it does not boot it again.
      vm.failure = failure;
      return fail(s, vm, failure);
    }
    s.markRunning(vm.vm_id);
    showUsage();
  };

  /**
   * Requests a rebuild found undecided and that nobody asked about within the grace period: the run
   * decides them itself, from what their rows say now. Still requested (or confirmed by the lost run's
   * boot): decided against the quota. Settled meanwhile (destroyed, rejected): dropped.
   */
  const decideForgottenRequests = async (s: TenantState): Promise<void> => {
    await sleep(PENDING_GRACE_MS);
    const ids = s.pendingIds();
    for (let i = 0; i < ids.length; i += READ_PAGE) {
      const rows = await readVmStatuses({ tenant_id: tenantId, vm_ids: ids.slice(i, i + READ_PAGE) });
      for (const vmId of ids.slice(i, i + READ_PAGE)) {
        const status = rows[vmId];
        if (status === 'requested' || status === 'provisioning' || status === 'running' || status === 'destroying') {
          const decided = s.decidePending(vmId);
          if (decided) resume(s, decided.vm);
        } else {
          s.releasePending(vmId);
        }
      }
      showUsage();
    }
  };

  const resume = (s: TenantState, vm: InFlightVm) => {
    if (vm.phase === 'pending') return;
    if (vm.phase === 'destroying') launch(teardown(s, vm), vm.vm_id);
    else if (vm.phase === 'lost') launch(abandon(s, vm), vm.vm_id);
    else if (vm.failure) launch(fail(s, vm, vm.failure), vm.vm_id);
    else launch(provision(s, vm), vm.vm_id);
  };

  setHandler(usageQuery, usage);

  setHandler(
    spawnVmUpdate,
    async (request) => {
      const s = state ?? (await loaded());
      updatesThisRun++;
      if (s.applyQuota(request.quota)) showUsage();
      // A request a rebuild found undecided: decided now, against the quota.
      const pending = s.decidePending(request.vm_id, causeOf(request.context));
      if (pending) {
        resume(s, pending.vm);
        showUsage();
        if (pending.refusal) throw refusalFailure(tenantId, pending.refusal);
        return { vm_id: request.vm_id, status: 'provisioning' };
      }
      // A request this workflow decided already (a retry, or the resolver's resend): its decision.
      const decided = s.decided(request.vm_id);
      if (decided) return { vm_id: request.vm_id, status: decided };
      // The decision: check and reserve with no await in between.
      const refusal = s.spawnRefusal(request);
      if (refusal) throw refusalFailure(tenantId, refusal);
      const vm = s.admit(request, Date.now(), limits.boot_timeout_ms);
      showUsage();
      launch(provision(s, vm), vm.vm_id);
      return { vm_id: vm.vm_id, status: 'provisioning' };
    },
    {
      // Refusing in the validator keeps refused spawns out of the history; the handler re-checks.
      validator: (request) => {
        if (!state || state.inFlight.has(request.vm_id) || state.decided(request.vm_id)) return;
        // A newer quota must be taken, which only the handler can do (once per quota change).
        if (request.quota && request.quota.version > state.quota.version) return;
        const refusal = state.spawnRefusal(request);
        if (refusal) throw refusalFailure(tenantId, refusal);
      },
    },
  );

  setHandler(
    destroyVmUpdate,
    async (request) => {
    const s = state ?? (await loaded());
    updatesThisRun++;
    const { vm_id } = request;
    const inFlight = s.inFlight.get(vm_id);
    // A request a rebuild holds undecided whose row was destroyed (or confirmed, then destroyed): decided
    // now, then ended like any VM of its kind (torn down if admitted, abandoned if it no longer fits).
    if (inFlight?.phase === 'pending') {
      const pending = s.decidePending(vm_id, causeOf(request.context));
      if (pending?.vm.phase === 'provisioning') pending.vm.phase = 'destroying';
      if (pending) resume(s, pending.vm);
      showUsage();
      return { vm_id, status: pending?.vm.phase === 'lost' ? 'failed' : 'destroying' };
    }
    if (inFlight?.phase === 'provisioning') {
      // Destroy beats provisioning: stop the boot, then destroy at the fleet (see provision).
      inFlight.phase = 'destroying';
      inFlight.cause = causeOf(request.context);
      showUsage();
      cancelBoot.get(vm_id)?.();
    }
    const decided = s.decided(vm_id);
    if (decided) return { vm_id, status: decided };
    // The in-flight limit is the validator's: refused here, it would be stored as the answer of this
    // update id for the rest of the run. (A destroy heard while the run rebuilt may pass it by a few.)
    // A running VM (the API moved its row to destroying): the workflow holds only its totals. Its
    // quota comes back when the teardown moves the row, never from memory alone.
    const vm = s.trackDestroy(vm_id, request.storage_gb ?? 0, causeOf(request.context));
    showUsage();
    launch(teardown(s, vm), vm_id);
    return { vm_id, status: 'destroying' };
    },
    {
      // Refused here, the in-flight limit is not stored as the answer of the update id: the same
      // destroy sent again once VMs have settled is heard.
      validator: (request) => {
        if (!state || state.inFlight.has(request.vm_id) || state.decided(request.vm_id)) return;
        if (state.inFlight.size >= limits.max_in_flight) throw refusalFailure(tenantId, { type: 'InFlightLimit', details: { in_flight: state.inFlight.size, limit: limits.max_in_flight } });
      },
    },
  );

  setHandler(changeQuotaUpdate, async (request) => {
    const s = state ?? (await loaded());
    updatesThisRun++;
    // Lowering a quota below current use refuses new spawns and destroys nothing.
    s.applyQuota({ ...request.quota, version: request.quota.version ?? s.quota.version + 1 });
    showUsage();
    return usage();
  });

  setHandler(closeTenantUpdate, async (request) => {
    const s = state ?? (await loaded());
    updatesThisRun++;
    if (s.closed) return usage();
    const hasVms = (vms: number) => ApplicationFailure.create({ type: FailureType.TenantHasVms, message: `tenant ${tenantId} still has ${vms} VMs`, nonRetryable: true });
    if (s.vms > 0) throw hasVms(s.vms);
    s.closing = true;
    const recorded = await recordTenantDeleted({ tenant_id: tenantId, context: request.context });
    s.closing = false;
    if (recorded.outcome === 'has_vms') throw hasVms(recorded.vms);
    s.closed = true;
    showUsage();
    return usage();
  });

  if (input.carried) {
    const restored = restore(tenantId, limits, input.carried);
    // Continued from an older version's run: its boots confirm under the epoch in force now.
    if (restored.epoch === null) restored.epoch = await readAdmissionEpoch({ tenant_id: tenantId });
    state = restored;
  } else {
    state = await rebuildFromPostgres(tenantId, limits);
  }
  const s = state;
  showUsage();

  // Resume the work a previous run (or a lost workflow) left in flight; the activities are idempotent.
  for (const vm of s.inFlight.values()) resume(s, vm);
  if (s.pendingIds().length > 0) launch(decideForgottenRequests(s), 'pending');

  const shouldContinueAsNew = () =>
    updatesThisRun >= updateLimit || workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS;

  await condition(() => (s.closed && s.inFlight.size === 0) || shouldContinueAsNew());
  // Never while an update is being handled or waits to be: each would lose its answer.
  await condition(allHandlersFinished);
  if (s.closed && s.inFlight.size === 0) return;

  // Carry the operator-facing metadata explicitly rather than rely on server defaults.
  const info = workflowInfo();
  const continueTenantAsNew = makeContinueAsNewFunc<typeof tenantWorkflow>({ typedSearchAttributes: info.typedSearchAttributes, memo: info.memo });
  await continueTenantAsNew({
    tenant_id: tenantId,
    continue_as_new_after_updates: input.continue_as_new_after_updates,
    limits: input.limits,
    carried: s.toCarried(),
  });
}

function restore(tenantId: string, limits: TenantLimits, carried: NonNullable<TenantWorkflowInput['carried']>): TenantState {
  if (!('state_version' in carried)) return TenantState.fromLegacy(tenantId, limits.max_in_flight, carried, Date.now(), limits.boot_timeout_ms);
  if (carried.state_version === 2) return TenantState.fromV2(tenantId, limits.max_in_flight, carried as CarriedTenantStateV2, Date.now(), limits.boot_timeout_ms);
  return TenantState.fromCarried(tenantId, limits.max_in_flight, carried);
}

/**
 * Reads the tenant from Postgres in one snapshot, after moving it to a new admission epoch (so a
 * boot of the lost run can no longer confirm a row): totals, the VMs in flight (resumed) and the
 * requests still undecided (held pending, then decided).
 */
async function rebuildFromPostgres(tenantId: string, limits: TenantLimits): Promise<TenantState> {
  // The run's start is its epoch: later than any run before it, the same for every attempt of this read.
  const snapshot = await loadTenantForRebuild({ tenant_id: tenantId, epoch: workflowInfo().runStartTime.getTime() });
  const inFlight: InFlightVm[] = snapshot.in_flight.map((vm) => ({
    vm_id: vm.vm_id,
    storage_gb: vm.storage_gb,
    phase: vm.phase,
    // Counted in the totals of the same snapshot: whoever settles it, this run gives its quota back.
    release: 'reserved',
    boot_deadline_ms: vm.phase === 'provisioning' ? vm.created_at_ms + limits.boot_timeout_ms : null,
    cause: { request_id: 'recovery', actor_token_id: null },
  }));
  return TenantState.rebuilt(tenantId, limits.max_in_flight, snapshot.totals, inFlight, snapshot.undecided, limits.boot_timeout_ms, snapshot.admission_epoch);
}

function refusalFailure(tenantId: string, refusal: SpawnRefusal): ApplicationFailure {
  switch (refusal.type) {
    case 'TenantClosed':
      return ApplicationFailure.create({ type: FailureType.TenantClosed, message: `tenant ${tenantId} is closed`, nonRetryable: true });
    case 'InFlightLimit':
      return ApplicationFailure.create({ type: FailureType.InFlightLimit, message: `${refusal.details.in_flight} VMs in flight`, details: [refusal.details], nonRetryable: true });
    case 'QuotaExceeded':
      return ApplicationFailure.create({ type: FailureType.QuotaExceeded, message: `quota exceeded: ${refusal.details.limit}`, details: [refusal.details], nonRetryable: true });
  }
}

/** The boot deadline passed: during an attempt (a timeout) or while waiting to retry one (retries ran out of time). */
function isBootTimeout(error: unknown): boolean {
  return error instanceof ActivityFailure && (error.cause instanceof TimeoutFailure || error.retryState === 'TIMEOUT');
}
