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
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../../activities';
import { FailureType } from '../../shared/failure-types';
import type { TenantSnapshot as LegacyTenantSnapshot } from '../../shared/legacy/tenant-v1.state';
import {
  changeQuotaUpdate,
  closeTenantUpdate,
  destroyVmUpdate,
  spawnVmUpdate,
  usageQuery,
  type DestroyVmRequest,
  type SpawnVmRequest,
  type TenantUsage,
} from '../../shared/tenant-workflow.messages';
import { continueAsNewSignal } from '../../shared/tenant-workflow.versions';
import type { CarriedTenantStateV2 as CarriedTenantState, InFlightPage, InFlightVmV2 as InFlightVm } from '../../shared/legacy/tenant-v2.state';
import type { TenantLimits, TenantWorkflowInput } from '../../shared/tenant-workflow.state';
import type { RequestContext } from '../../shared/request-context';
import type { VmStatus } from '../../shared/vm';
import { causeOf, TenantStateV2 as TenantState, type SpawnRefusalV2 as SpawnRefusal } from './tenant-state-v2';

type Activities = ReturnType<typeof createActivities>;

const DEFAULT_LIMITS: TenantLimits = {
  // Temporal refuses to schedule more than 2,000 pending activities per workflow; each VM in flight
  // is one. 1,000 also keeps the carried state near 150 KB, well under the 2 MiB payload limit.
  max_in_flight: 1000,
  boot_timeout_ms: 15 * 60_000,
};
const DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES = 1000;
// Well under Temporal's 10,240-event warning and 51,200-event hard limit.
const CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS = 4000;
const IN_FLIGHT_PAGE = 500;

const { loadTenantTotals, listInFlightVms } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// Each fact of a request is in Postgres before the workflow answers it: these run inside the
// update handler, in the worker that runs the workflow task. The bounded retry keeps an update
// from waiting long; past it, the same activity runs as a normal one until Postgres answers.
const recordNow = proxyLocalActivities<Activities>({
  startToCloseTimeout: '4 seconds',
  scheduleToCloseTimeout: '6 seconds',
  retry: { initialInterval: '200 milliseconds', maximumInterval: '2 seconds' },
});
const recordEventually = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

// Fleet work retries until it lands: a fleet outage delays a destroy, it never loses it.
const { teardownVm, failVm } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
});

/**
 * The tenant workflow of state version 2 (admission recorded by a local activity inside the update),
 * frozen: runs started by that code replay and finish their run here, then continue as new into the
 * current code (docs/admission-protocol.md), which converts the carried state. Do not change what
 * this function does; delete it as ./README.md says.
 */
export async function legacyTenantWorkflowV2(input: TenantWorkflowInput): Promise<void> {
  const tenantId = input.tenant_id;
  const limits: TenantLimits = { ...DEFAULT_LIMITS, ...input.limits };
  const updateLimit = input.continue_as_new_after_updates ?? DEFAULT_CONTINUE_AS_NEW_AFTER_UPDATES;
  const { bootVm } = proxyActivities<Activities>({
    scheduleToCloseTimeout: limits.boot_timeout_ms,
    startToCloseTimeout: limits.boot_timeout_ms,
    heartbeatTimeout: '10 seconds',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
    // A destroy waits until the boot attempt has stopped, so the fleet hears the destroy last.
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  });

  let state: TenantState | undefined = input.carried ? restore(tenantId, limits, input.carried) : undefined;
  let updatesThisRun = 0;
  const cancelBoot = new Map<string, () => void>();

  const loaded = async (): Promise<TenantState> => {
    await condition(() => state !== undefined);
    return state!;
  };
  const usage = (): TenantUsage =>
    state?.usage(updatesThisRun) ?? {
      tenant_id: tenantId,
      vms: 0,
      storage_gb: 0,
      max_vms: 0,
      storage_quota_gb: 0,
      provisioning: 0,
      destroying: 0,
      closed: false,
      run_updates: 0,
    };
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
    await teardownVm({ tenant_id: tenantId, vm_id: vm.vm_id, cause: vm.cause });
    s.settle(vm.vm_id, 'destroyed');
    showUsage();
  };

  const provision = async (s: TenantState, vm: InFlightVm): Promise<void> => {
    const scope = new CancellationScope();
    cancelBoot.set(vm.vm_id, () => scope.cancel());
    let failure: string | null = null;
    try {
      const outcome = await scope.run(() => bootVm({ tenant_id: tenantId, vm_id: vm.vm_id, cause: vm.cause }));
      if (outcome.status === 'destroy_requested') vm.phase = 'destroying';
      failure = outcome.status === 'failed' ? (outcome.failure_reason ?? 'boot_failed') : null;
    } catch (error) {
      if (!isCancellation(error)) failure = isBootTimeout(error) ? 'boot_timeout' : 'boot_error';
    } finally {
      cancelBoot.delete(vm.vm_id);
    }
    if (vm.phase === 'destroying') return teardown(s, vm);
    if (failure) {
      await failVm({ tenant_id: tenantId, vm_id: vm.vm_id, reason: failure, cause: vm.cause });
      s.settle(vm.vm_id, 'failed');
    } else {
      s.markRunning(vm.vm_id);
    }
    showUsage();
  };

  // The recordings run one at a time. Two local activities in flight together may finish in
  // separate activations when they run and in one when a history is replayed; the commands the
  // handlers then issue would come in another order, and the replay fail as non-deterministic.
  let recording: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(work: () => Promise<T>): Promise<T> => {
    const run = recording.then(work);
    recording = run.catch(() => undefined);
    return run;
  };
  const recordSpawn = (request: SpawnVmRequest) => {
    const args = { tenant_id: tenantId, request };
    return oneAtATime(() => recordNow.recordSpawnAdmitted(args).catch(() => recordEventually.recordSpawnAdmitted(args)));
  };
  const recordDestroy = (request: DestroyVmRequest) => {
    const args = { tenant_id: tenantId, vm_id: request.vm_id, context: request.context };
    return oneAtATime(() => recordNow.recordDestroyRequested(args).catch(() => recordEventually.recordDestroyRequested(args)));
  };
  const recordDeleted = (context: RequestContext) => {
    const args = { tenant_id: tenantId, context };
    return oneAtATime(() => recordNow.recordTenantDeleted(args).catch(() => recordEventually.recordTenantDeleted(args)));
  };

  const untilAdmitted = async (s: TenantState, vmId: string): Promise<void> => {
    if (s.inFlight.get(vmId)?.phase === 'admitting') await condition(() => s.inFlight.get(vmId)?.phase !== 'admitting');
  };

  setHandler(usageQuery, usage);
  // The one change since the freeze, replay-safe (a history without the signal replays as before):
  // the upgrade procedure asks the run to continue as new into the current code (docs/upgrades.md).
  let continueAsNewAsked = false;
  setHandler(continueAsNewSignal, () => void (continueAsNewAsked = true));

  setHandler(
    spawnVmUpdate,
    async (request) => {
      const s = state ?? (await loaded());
      updatesThisRun++;
      if (s.applyQuota(request.quota)) showUsage();
      if (s.knownStatus(request.vm_id)) {
        await untilAdmitted(s, request.vm_id);
        return { vm_id: request.vm_id, status: s.knownStatus(request.vm_id) ?? 'provisioning' };
      }
      // Check and reserve with no await in between: this is the quota's atomic step. A VM Postgres
      // already holds (adopt) is counted whatever the quota: it exists.
      const refusal = request.adopt ? null : s.spawnRefusal(request);
      if (refusal) throw refusalFailure(tenantId, refusal);
      const vm = s.reserve(request);
      showUsage();
      const recorded = await recordSpawn(request);
      if (recorded.outcome === 'recorded') {
        vm.phase = 'provisioning';
        launch(provision(s, vm), vm.vm_id);
        return { vm_id: vm.vm_id, status: 'provisioning' };
      }
      s.unreserve(vm.vm_id);
      showUsage();
      if (recorded.outcome === 'tenant_deleted') {
        s.closed = true;
        throw refusalFailure(tenantId, { type: 'TenantClosed' });
      }
      s.remember(vm.vm_id, recorded.status);
      return { vm_id: vm.vm_id, status: recorded.status };
    },
    {
      // Refusing in the validator keeps refused spawns out of the history; the handler re-checks.
      validator: (request) => {
        if (!state || state.knownStatus(request.vm_id) || request.adopt) return;
        // A newer quota must be taken, which only the handler can do (once per quota change).
        if (request.quota && request.quota.version > state.quota.version) return;
        const refusal = state.spawnRefusal(request);
        if (refusal) throw refusalFailure(tenantId, refusal);
      },
    },
  );

  setHandler(destroyVmUpdate, async (request) => {
    const s = state ?? (await loaded());
    updatesThisRun++;
    const { vm_id } = request;
    await untilAdmitted(s, vm_id);
    const inFlight = s.inFlight.get(vm_id);
    if (inFlight?.phase === 'destroying') return { vm_id, status: 'destroying' as VmStatus };
    if (inFlight) {
      // Destroy beats provisioning: stop the boot, then destroy at the fleet (see provision).
      inFlight.phase = 'destroying';
      inFlight.cause = causeOf(request.context);
      showUsage();
      await recordDestroy(request);
      cancelBoot.get(vm_id)?.();
      return { vm_id, status: 'destroying' as VmStatus };
    }
    const settled = s.knownStatus(vm_id);
    if (settled) return { vm_id, status: settled };
    if (s.inFlight.size >= limits.max_in_flight)
      throw refusalFailure(tenantId, { type: 'InFlightLimit', details: { in_flight: s.inFlight.size, limit: limits.max_in_flight } });
    // A running VM: the workflow holds only its totals. Listing it now makes a concurrent destroy
    // of the same VM answer `destroying` instead of destroying twice.
    const vm = s.trackDestroy(vm_id, 0, causeOf(request.context));
    const recorded = await recordDestroy(request);
    if (recorded.outcome === 'recorded') {
      vm.storage_gb = recorded.storage_gb;
      showUsage();
      launch(teardown(s, vm), vm_id);
      return { vm_id, status: 'destroying' as VmStatus };
    }
    s.inFlight.delete(vm_id);
    if (recorded.outcome === 'not_found') {
      throw ApplicationFailure.create({ type: FailureType.VmNotFound, message: `no VM ${vm_id} in tenant ${tenantId}`, nonRetryable: true });
    }
    return { vm_id, status: recorded.status };
  });

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
    const hasVms = (vms: number) =>
      ApplicationFailure.create({ type: FailureType.TenantHasVms, message: `tenant ${tenantId} still has ${vms} VMs`, nonRetryable: true });
    if (s.vms > 0) throw hasVms(s.vms);
    s.closing = true;
    const recorded = await recordDeleted(request.context);
    s.closing = false;
    if (recorded.outcome === 'has_vms') throw hasVms(recorded.vms);
    s.closed = true;
    showUsage();
    return usage();
  });

  if (!state) state = await rebuildFromPostgres(tenantId, limits);
  const s = state;
  showUsage();

  // Resume the work a previous run (or a lost workflow) left in flight; the activities are idempotent.
  for (const vm of s.inFlight.values()) {
    if (vm.phase === 'destroying') launch(teardown(s, vm), vm.vm_id);
    else launch(provision(s, vm), vm.vm_id);
  }

  const shouldContinueAsNew = () =>
    continueAsNewAsked ||
    updatesThisRun >= updateLimit ||
    workflowInfo().continueAsNewSuggested ||
    workflowInfo().historyLength >= CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS;

  await condition(() => (s.closed && s.inFlight.size === 0) || shouldContinueAsNew());
  await condition(allHandlersFinished);
  if (s.closed && s.inFlight.size === 0) return;

  // Carry the operator-facing metadata explicitly rather than rely on server defaults.
  const info = workflowInfo();
  const continueTenantAsNew = makeContinueAsNewFunc<(input: TenantWorkflowInput) => Promise<void>>({
    typedSearchAttributes: info.typedSearchAttributes,
    memo: info.memo,
  });
  await continueTenantAsNew({
    tenant_id: tenantId,
    continue_as_new_after_updates: input.continue_as_new_after_updates,
    limits: input.limits,
    carried: s.toCarried(),
  });
}

function restore(tenantId: string, limits: TenantLimits, carried: TenantWorkflowInput['carried'] & object): TenantState {
  if ('state_version' in carried) return TenantState.fromCarried(tenantId, limits.max_in_flight, carried as CarriedTenantState);
  return TenantState.fromLegacy(tenantId, limits.max_in_flight, carried as LegacyTenantSnapshot);
}

/** Reads the tenant from Postgres: totals as one aggregate, the VMs in flight in pages. */
async function rebuildFromPostgres(tenantId: string, limits: TenantLimits): Promise<TenantState> {
  const totals = await loadTenantTotals({ tenant_id: tenantId });
  const inFlight: InFlightVm[] = [];
  for (let after: string | null = null; ;) {
    // Histories hold the page as version 2's activity answered it (an array); a live call answers today's shape.
    const answer = (await listInFlightVms({ tenant_id: tenantId, after, limit: IN_FLIGHT_PAGE })) as unknown as InFlightVm[] | InFlightPage;
    const page: InFlightVm[] = Array.isArray(answer)
      ? answer
      : answer.in_flight.map((vm) => ({
          vm_id: vm.vm_id,
          storage_gb: vm.storage_gb,
          phase: vm.phase,
          cause: { request_id: 'recovery', actor_token_id: null },
        }));
    inFlight.push(...page);
    if (Array.isArray(answer) ? answer.length < IN_FLIGHT_PAGE : answer.next_after === null) break;
    after = Array.isArray(answer) ? answer[answer.length - 1]!.vm_id : answer.next_after;
  }
  return new TenantState(tenantId, limits.max_in_flight, totals, inFlight);
}

function refusalFailure(tenantId: string, refusal: SpawnRefusal): ApplicationFailure {
  switch (refusal.type) {
    case 'TenantClosed':
      return ApplicationFailure.create({ type: FailureType.TenantClosed, message: `tenant ${tenantId} is closed`, nonRetryable: true });
    case 'InFlightLimit':
      return ApplicationFailure.create({
        type: FailureType.InFlightLimit,
        message: `${refusal.details.in_flight} VMs in flight`,
        details: [refusal.details],
        nonRetryable: true,
      });
    case 'QuotaExceeded':
      return ApplicationFailure.create({
        type: FailureType.QuotaExceeded,
        message: `quota exceeded: ${refusal.details.limit}`,
        details: [refusal.details],
        nonRetryable: true,
      });
  }
}

/** The boot deadline passed: during an attempt (a timeout) or while waiting to retry one (retries ran out of time). */
function isBootTimeout(error: unknown): boolean {
  return error instanceof ActivityFailure && (error.cause instanceof TimeoutFailure || error.retryState === 'TIMEOUT');
}
