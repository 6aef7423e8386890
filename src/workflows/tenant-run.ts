import {
  ActivityCancellationType,
  ActivityFailure,
  type ActivityOptions,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  sleep,
  TimeoutFailure,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities';
import { FailureType } from '../shared/failure-types';
import type {
  ChangeQuotaRequest,
  CloseTenantRequest,
  DestroyVmRequest,
  DestroyVmResult,
  SpawnVmRequest,
  SpawnVmResult,
  TenantUsage,
} from '../shared/tenant-workflow.messages';
import type { CarriedTenantState, InFlightVm, TenantLimits, TenantWorkflowInput } from '../shared/tenant-workflow.state';
import { fromOlderCarriedState } from './legacy/older-carried-state';
import { causeOf, TenantState, type SpawnRefusal } from './tenant-state';

type Activities = ReturnType<typeof createActivities>;

const READ_PAGE = 500;
// A boot scheduled this close to (or past) its deadline still gets one short attempt.
const MIN_BOOT_WINDOW_MS = 1000;
// Past the API's Temporal deadline: a request still undecided this long after a rebuild has nobody waiting on it.
const PENDING_GRACE_MS = 15_000;
// Well under Temporal's 10,240-event warning; small enough that a worker replays it in well under
// the 10 s workflow task timeout on a busy machine.
const CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS = 2000;

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
 * One run of the tenant workflow: every message handler is one call into a method here, and the
 * rules and their order live in TenantState. The spawn path by name: `spawn` (decidePending →
 * decided → spawnRefusal → admit, one synchronous step) → `provision` (the bootVm activity) →
 * `markRunning`, or `fail` / `teardown`. The one ordering rule of its own: no message is handled
 * before the state is loaded (`loaded`); every decision after that is synchronous.
 */
export class TenantRun {
  private state: TenantState | undefined;
  private updatesThisRun = 0;
  private continueAsNewAsked = false;
  /** Cancels the boot of a VM in flight (a destroy beats provisioning). */
  private readonly cancelBoot = new Map<string, () => void>();

  constructor(
    readonly tenantId: string,
    readonly limits: TenantLimits,
    private readonly updateLimit: number,
  ) {}

  usage(): TenantUsage {
    return (
      this.state?.usage(this.updatesThisRun) ?? {
        tenant_id: this.tenantId,
        vms: 0,
        storage_gb: 0,
        max_vms: 0,
        storage_quota_gb: 0,
        provisioning: 0,
        destroying: 0,
        closed: false,
        run_updates: 0,
      }
    );
  }

  /** Refusing in the validator keeps refused spawns out of the history; the handler re-checks. */
  validateSpawn(request: SpawnVmRequest): void {
    const state = this.state;
    if (!state || state.inFlight.has(request.vm_id) || state.decided(request.vm_id)) return;
    // A newer quota must be taken, which only the handler can do (once per quota change).
    if (request.quota && request.quota.version > state.quota.version) return;
    const refusal = state.spawnRefusal(request);
    if (refusal) throw refusalFailure(this.tenantId, refusal);
  }

  async spawn(request: SpawnVmRequest): Promise<SpawnVmResult> {
    const s = this.state ?? (await this.loaded());
    this.updatesThisRun++;
    if (s.applyQuota(request.quota)) this.showUsage();
    // A request a rebuild found undecided: decided now, against the quota.
    const pending = s.decidePending(request.vm_id, causeOf(request.context));
    if (pending) {
      this.resume(s, pending.vm);
      this.showUsage();
      if (pending.refusal) throw refusalFailure(this.tenantId, pending.refusal);
      return { vm_id: request.vm_id, status: 'provisioning' };
    }
    // A request this workflow decided already (a retry, or the resolver's resend): its decision.
    const decided = s.decided(request.vm_id);
    if (decided) return { vm_id: request.vm_id, status: decided };
    // The decision: check and reserve with no await in between.
    const refusal = s.spawnRefusal(request);
    if (refusal) throw refusalFailure(this.tenantId, refusal);
    const vm = s.admit(request, Date.now(), this.limits.boot_timeout_ms);
    this.showUsage();
    this.launch(this.provision(s, vm), vm.vm_id);
    return { vm_id: vm.vm_id, status: 'provisioning' };
  }

  /**
   * Refused here, the in-flight limit is not stored as the answer of the update id: the same
   * destroy sent again once VMs have settled is heard.
   */
  validateDestroy(request: DestroyVmRequest): void {
    const state = this.state;
    if (!state || state.inFlight.has(request.vm_id) || state.decided(request.vm_id)) return;
    if (state.inFlight.size >= this.limits.max_in_flight)
      throw refusalFailure(this.tenantId, { type: 'InFlightLimit', details: { in_flight: state.inFlight.size, limit: this.limits.max_in_flight } });
  }

  async destroy(request: DestroyVmRequest): Promise<DestroyVmResult> {
    const s = this.state ?? (await this.loaded());
    this.updatesThisRun++;
    const { vm_id } = request;
    const inFlight = s.inFlight.get(vm_id);
    // A request a rebuild holds undecided whose row was destroyed (or confirmed, then destroyed): decided
    // now, then ended like any VM of its kind (torn down if admitted, abandoned if it no longer fits).
    if (inFlight?.phase === 'pending') {
      const pending = s.decidePending(vm_id, causeOf(request.context));
      if (pending?.vm.phase === 'provisioning') pending.vm.phase = 'destroying';
      if (pending) this.resume(s, pending.vm);
      this.showUsage();
      return { vm_id, status: pending?.vm.phase === 'lost' ? 'failed' : 'destroying' };
    }
    if (inFlight?.phase === 'provisioning') {
      // Destroy beats provisioning: stop the boot, then destroy at the fleet (see provision).
      inFlight.phase = 'destroying';
      inFlight.cause = causeOf(request.context);
      this.showUsage();
      this.cancelBoot.get(vm_id)?.();
    }
    const decided = s.decided(vm_id);
    if (decided) return { vm_id, status: decided };
    // The in-flight limit is the validator's: refused here, it would be stored as the answer of this
    // update id for the rest of the run. (A destroy heard while the run rebuilt may pass it by a few.)
    // A running VM (the API moved its row to destroying): the workflow holds only its totals. Its
    // quota comes back when the teardown moves the row, never from memory alone.
    const vm = s.trackDestroy(vm_id, request.storage_gb ?? 0, causeOf(request.context));
    this.showUsage();
    this.launch(this.teardown(s, vm), vm_id);
    return { vm_id, status: 'destroying' };
  }

  async changeQuota(request: ChangeQuotaRequest): Promise<TenantUsage> {
    const s = this.state ?? (await this.loaded());
    this.updatesThisRun++;
    // Lowering a quota below current use refuses new spawns and destroys nothing.
    s.applyQuota({ ...request.quota, version: request.quota.version ?? s.quota.version + 1 });
    this.showUsage();
    return this.usage();
  }

  async close(request: CloseTenantRequest): Promise<TenantUsage> {
    const s = this.state ?? (await this.loaded());
    this.updatesThisRun++;
    if (s.closed) return this.usage();
    if (s.vms > 0) throw hasVmsFailure(this.tenantId, s.vms);
    s.closing = true;
    const recorded = await recordTenantDeleted({ tenant_id: this.tenantId, context: request.context });
    s.closing = false;
    if (recorded.outcome === 'has_vms') throw hasVmsFailure(this.tenantId, recorded.vms);
    s.closed = true;
    this.showUsage();
    return this.usage();
  }

  /** The continueAsNew signal (docs/upgrades.md): continue as new at the next safe point. */
  askContinueAsNew(): void {
    this.continueAsNewAsked = true;
  }

  /** The run's state: carried by the previous run, or rebuilt from Postgres. Messages wait for it. */
  async load(carried: TenantWorkflowInput['carried']): Promise<TenantState> {
    if (carried) {
      const restored =
        fromOlderCarriedState(this.tenantId, this.limits, carried, Date.now()) ??
        TenantState.fromCarried(this.tenantId, this.limits.max_in_flight, carried as CarriedTenantState);
      // Continued from an older version's run: its boots confirm under the epoch in force now.
      if (restored.epoch === null) restored.epoch = await readAdmissionEpoch({ tenant_id: this.tenantId });
      this.state = restored;
    } else {
      this.state = await this.rebuildFromPostgres();
    }
    return this.state;
  }

  /** Resumes the work a previous run (or a lost workflow) left in flight; the activities are idempotent. */
  resumeWork(s: TenantState): void {
    for (const vm of s.inFlight.values()) this.resume(s, vm);
    if (s.pendingIds().length > 0) this.launch(this.decideForgottenRequests(s), 'pending');
  }

  isFinished(s: TenantState): boolean {
    return s.closed && s.inFlight.size === 0;
  }

  shouldContinueAsNew(): boolean {
    return (
      this.continueAsNewAsked ||
      this.updatesThisRun >= this.updateLimit ||
      workflowInfo().continueAsNewSuggested ||
      workflowInfo().historyLength >= CONTINUE_AS_NEW_AFTER_HISTORY_EVENTS
    );
  }

  /** Shown in the Temporal UI ("Current details") so operators see usage without querying. */
  showUsage(): void {
    const u = this.usage();
    setCurrentDetails(
      `**Tenant ${this.tenantId}**${u.closed ? ' (closed)' : ''}\n\n` +
        `VMs: ${u.vms} / ${u.max_vms} (provisioning ${u.provisioning}, destroying ${u.destroying})\n\n` +
        `Storage: ${u.storage_gb} / ${u.storage_quota_gb} GB`,
    );
  }

  private async loaded(): Promise<TenantState> {
    await condition(() => this.state !== undefined);
    return this.state!;
  }

  /**
   * The one-line summary (user metadata) the Temporal UI shows on a VM's activity, so an operator
   * finds a VM's work by its id. Metadata only: no command changes, recorded histories replay as before.
   */
  private vmSummary(action: string, vmId: string): ActivityOptions {
    return { summary: `${action} VM ${vmId} (tenant ${this.tenantId})` };
  }

  private launch(work: Promise<void>, vmId: string): void {
    work.catch((error: unknown) => log.error('VM work failed unexpectedly', { vm_id: vmId, error: String(error) }));
  }

  /** Starts (or restarts) the work a VM in flight is waiting for, by its phase. */
  private resume(s: TenantState, vm: InFlightVm): void {
    if (vm.phase === 'pending') return;
    if (vm.phase === 'destroying') this.launch(this.teardown(s, vm), vm.vm_id);
    else if (vm.phase === 'lost') this.launch(this.abandon(s, vm), vm.vm_id);
    else if (vm.failure) this.launch(this.fail(s, vm, vm.failure), vm.vm_id);
    else this.launch(this.provision(s, vm), vm.vm_id);
  }

  /** Boots an admitted VM, within the deadline it got at admission (kept across continue-as-new). */
  private async provision(s: TenantState, vm: InFlightVm): Promise<void> {
    const deadline = vm.boot_deadline_ms ?? Date.now() + this.limits.boot_timeout_ms;
    const { bootVm } = proxyActivities<Activities>({
      scheduleToCloseTimeout: Math.max(MIN_BOOT_WINDOW_MS, deadline - Date.now()),
      heartbeatTimeout: '10 seconds',
      retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2 },
      // A destroy waits until the boot attempt has stopped, so the fleet hears the destroy last.
      cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    });
    if (Date.now() >= deadline) {
      vm.failure = 'boot_timeout';
      return this.fail(s, vm, vm.failure);
    }
    const scope = new CancellationScope();
    this.cancelBoot.set(vm.vm_id, () => scope.cancel());
    let failure: string | null = null;
    try {
      const outcome = await scope.run(() =>
        bootVm.executeWithOptions(this.vmSummary('Boot', vm.vm_id), [{ tenant_id: this.tenantId, vm_id: vm.vm_id, cause: vm.cause, epoch: s.epoch ?? 0 }]),
      );
      if (outcome.status === 'destroy_requested') vm.phase = 'destroying';
      failure = outcome.status === 'failed' ? (outcome.failure_reason ?? 'boot_failed') : null;
    } catch (error) {
      if (!isCancellation(error)) failure = isBootTimeout(error) ? 'boot_timeout' : 'boot_error';
    } finally {
      this.cancelBoot.delete(vm.vm_id);
    }
    if (vm.phase === 'destroying') return this.teardown(s, vm);
    if (failure) {
      // Carried across continue-as-new: the next run fails it, it does not boot it again.
      vm.failure = failure;
      return this.fail(s, vm, failure);
    }
    s.markRunning(vm.vm_id);
    this.showUsage();
  }

  private async teardown(s: TenantState, vm: InFlightVm): Promise<void> {
    const outcome = await teardownVm.executeWithOptions(this.vmSummary('Tear down', vm.vm_id), [
      { tenant_id: this.tenantId, vm_id: vm.vm_id, cause: vm.cause },
    ]);
    if (vm.release === 'if_released') vm.storage_gb = outcome.storage_gb;
    s.settle(vm.vm_id, 'destroyed', outcome.released);
    this.showUsage();
  }

  private async fail(s: TenantState, vm: InFlightVm, reason: string): Promise<void> {
    const outcome = await failVm.executeWithOptions(this.vmSummary(`Fail (${reason})`, vm.vm_id), [
      { tenant_id: this.tenantId, vm_id: vm.vm_id, reason, cause: vm.cause, epoch: s.epoch ?? 0 },
    ]);
    s.settle(vm.vm_id, 'failed', outcome.released);
    this.showUsage();
  }

  private async abandon(s: TenantState, vm: InFlightVm): Promise<void> {
    const outcome = await abandonAdmission.executeWithOptions(this.vmSummary('Abandon admission of', vm.vm_id), [
      { tenant_id: this.tenantId, vm_id: vm.vm_id, cause: vm.cause, epoch: s.epoch ?? 0 },
    ]);
    s.settle(vm.vm_id, 'failed', outcome.released);
    this.showUsage();
  }

  /**
   * Requests a rebuild found undecided and that nobody asked about within the grace period: the run
   * decides them itself, from what their rows say now. Still requested (or confirmed by the lost run's
   * boot): decided against the quota. Settled meanwhile (destroyed, rejected): dropped.
   */
  private async decideForgottenRequests(s: TenantState): Promise<void> {
    await sleep(PENDING_GRACE_MS);
    const ids = s.pendingIds();
    for (let i = 0; i < ids.length; i += READ_PAGE) {
      const rows = await readVmStatuses({ tenant_id: this.tenantId, vm_ids: ids.slice(i, i + READ_PAGE) });
      for (const vmId of ids.slice(i, i + READ_PAGE)) {
        const status = rows[vmId];
        if (status === 'requested' || status === 'provisioning' || status === 'running' || status === 'destroying') {
          const decided = s.decidePending(vmId);
          if (decided) this.resume(s, decided.vm);
        } else {
          s.releasePending(vmId);
        }
      }
      this.showUsage();
    }
  }

  /**
   * Reads the tenant from Postgres in one snapshot, after moving it to a new admission epoch (so a
   * boot of the lost run can no longer confirm a row): totals, the VMs in flight (resumed) and the
   * requests still undecided (held pending, then decided).
   */
  private async rebuildFromPostgres(): Promise<TenantState> {
    const { tenantId, limits } = this;
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

function hasVmsFailure(tenantId: string, vms: number): ApplicationFailure {
  return ApplicationFailure.create({ type: FailureType.TenantHasVms, message: `tenant ${tenantId} still has ${vms} VMs`, nonRetryable: true });
}

/** The boot deadline passed: during an attempt (a timeout) or while waiting to retry one (retries ran out of time). */
function isBootTimeout(error: unknown): boolean {
  return error instanceof ActivityFailure && (error.cause instanceof TimeoutFailure || error.retryState === 'TIMEOUT');
}
