/**
 * A model of the admission protocol (docs/admission-protocol.md) across processes, driven by
 * schedules fast-check generates (test/model/admission-model.test.ts).
 *
 * Every decision of the tenant workflow is made by the real TenantState
 * (src/workflows/tenant-state.ts), wired as src/workflows/tenant.workflow.ts wires it: the spawn
 * handler (validator, applyQuota, decidePending, decided, spawnRefusal, admit), the destroy handler
 * and its validator, the quota and close handlers, the rebuild (TenantState.rebuilt from one
 * snapshot, requested rows undecided, the run's admission epoch), the grace-period
 * decision of what a rebuild left pending (decideForgottenRequests), the continuations of provision,
 * teardown, fail and abandon (markRunning, settle; a failure carried across continue-as-new) and
 * continue-as-new (toCarried, fromCarried).
 *
 * Everything around it is simulated in memory, one durable step at a time, as the code does it:
 * - Postgres: the tenant's versioned quota, deletion and admission epoch, and the VM rows, with the
 *   conditional writes of vm.repository.ts, spawn-admission.ts, vm.service.ts, tenant.activities.ts
 *   and vm.activities.ts (including which request's VM_DESTROYED entry a row got, which teardownVm
 *   reads, and the epoch under which bootVm confirms a row);
 * - the fleet: a create is idempotent by VM id and travels on its own (it may land late, after the
 *   worker that sent it died); a destroy leaves a tombstone, and a create of a tombstoned id is
 *   refused `vm_tombstoned` (docs/fleet-api.md);
 * - Temporal: an update is refused by its validator (never in the history), lost before acceptance,
 *   or durably applied (and deduplicated by its update id within a run); continue-as-new carries
 *   toCarried(); terminate starts a run rebuilt from Postgres by the one activity rebuildFromPostgres
 *   calls, loadTenantForRebuild (the admission epoch raised to the run's start time, greatest(stored,
 *   run's), then totals, rows in flight and undecided requests in one snapshot, which carries the
 *   run's own epoch), whose result the run takes at a later workflow task (updates accepted meanwhile
 *   meet no validator). Every run has a start time later than the run before it, and every attempt
 *   of a run's rebuild carries that run's start as its epoch. An activity is a series of attempts: a worker crash retries it, and a
 *   worker that picked an attempt up and was only stopped may wake up after its attempt was retried,
 *   its run continued or terminated, or its boot timed out: such a zombie still writes to Postgres and
 *   the fleet, and nobody reads its result;
 * - API replicas and the admission resolver: each request split into its steps (record, deliver
 *   the update, handle the answer), so a crash lands between any two.
 *
 * Time is abstract: whatever waits on a clock (the resolver's 15 s, the grace period, a boot
 * deadline, a retry's backoff, a slow process) is an action a schedule may take at any point. That
 * admits every real timing, and some no clock would produce; a safety property must hold for them too.
 */
import fc from 'fast-check';
import type { RequestContext } from '../../src/shared/request-context';
import { spawnUpdateId, type SpawnVmRequest, type VersionedQuota } from '../../src/shared/tenant-workflow.messages';
import type { BootOutcome, InFlightVm, RebuildSnapshot, WorkCause } from '../../src/shared/tenant-workflow.state';
import type { VmStatus } from '../../src/shared/vm';
import { causeOf, TenantState, type SpawnRefusal } from '../../src/workflows/tenant-state';

export interface ModelOptions {
  /**
   * The rule the previous protocol healed its window with (issue 18): a spawn sent again for a row
   * Postgres already holds (a retry under the same key, or the resolver's resend) is counted
   * whatever the quota. Off in the real protocol; on, the model must find what it lets through.
   */
  adoptWhateverTheQuota?: boolean;
  /**
   * Gaps this model found that are still open in the code (test/model/admission-model.test.ts,
   * "known gaps"), each closed the way a fix could close it, so that a property can look past it
   * for other faults. Gaps the code has closed since (G1, G2, G3, G7, G8, G9, and G10–G13 in
   * e30cd80) have no switch: the model ports the code as it is.
   */
  fixes?: {
    /**
     * G6: the workflow remembers every VM it admitted, running ones too (carried across
     * continue-as-new; after a rebuild, the rows holding quota), and answers a later spawn of one
     * from that memory instead of admitting it again.
     */
    rememberAdmitted?: boolean;
  };
  /** Checks a property leaves out because a known gap breaks them. */
  skipChecks?: {
    /**
     * G4: a request decided twice (refused, then admitted under the same update id): 202
     * provisioning for a row rejected by the refusal (quota_exceeded, in_flight_limit, tenant_closed).
     */
    acceptedThenRejected?: boolean;
    /** G5: a retry (attempt n + 1) of an id the workflow remembers settled stays `requested`. */
    reRequestOfSettledId?: boolean;
  };
}

/** One step of a schedule. `pick` chooses among what can take that step now (modulo their number). */
export type Action =
  | { do: 'spawn'; key: number }
  | { do: 'destroy'; key: number }
  | { do: 'api'; pick: number; lost: boolean }
  | { do: 'apiCrash'; pick: number }
  | { do: 'activity'; pick: number }
  | { do: 'fleet'; pick: number; refuse: boolean }
  | { do: 'workerCrash'; pick: number; zombie: boolean }
  | { do: 'bootTimeout'; pick: number }
  | { do: 'continueAsNew' }
  | { do: 'terminate' }
  | { do: 'rebuild' }
  | { do: 'quota'; maxVms: number; storageGb: number }
  | { do: 'deleteTenant' }
  | { do: 'resolver'; pick: number }
  | { do: 'grace' };

const TENANT = 'acme';
const MAX_IN_FLIGHT = 3;
const BOOT_TIMEOUT_MS = 60_000;
/** Idempotency keys a client may use; a spawn with key k names VM `vm-k` and asks for STORAGE_GB[k]. */
const STORAGE_GB = [2, 1, 3, 2, 4, 1] as const;
const INITIAL_QUOTA: VersionedQuota = { max_vms: 2, storage_quota_gb: 6, version: 1 };
const HOLDING: readonly VmStatus[] = ['provisioning', 'running', 'destroying'];
const CLIENT: RequestContext = { request_id: 'client', actor_token_id: 'tok-1', actor_scope: 'vm:write', source_ip: null, user_agent: null };
const RESOLVER: RequestContext = {
  request_id: 'admission-resolver',
  actor_token_id: null,
  actor_scope: 'system:admission-resolver',
  source_ip: null,
  user_agent: null,
};

/** An invariant of docs/admission-protocol.md that a schedule broke; the message carries the trace. */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

// ---------------------------------------------------------------------------------------------
// Postgres

interface Row {
  vm_id: string;
  storage_gb: number;
  status: VmStatus;
  admission_attempt: number;
  failure_reason: string | null;
  created_at_ms: number;
  /** request_id of the VM_DESTROYED ledger entry (one per VM, written by the transaction that moved the row). */
  destroyed_by: string | null;
  /**
   * The reason of the VM_SPAWN_REJECTED ledger entry of the row's current attempt (a refusal; it is
   * also the row's failure_reason). A request decided lost is failed, not rejected (G11).
   */
  rejected_for: string | null;
}

class Postgres {
  readonly tenant = {
    max_vms: INITIAL_QUOTA.max_vms,
    storage_quota_gb: INITIAL_QUOTA.storage_quota_gb,
    quota_version: INITIAL_QUOTA.version,
    deleted: false,
    admission_epoch: 0,
  };
  readonly rows = new Map<string, Row>();

  quota(): VersionedQuota {
    return { max_vms: this.tenant.max_vms, storage_quota_gb: this.tenant.storage_quota_gb, version: this.tenant.quota_version };
  }

  /** insertRequestedVm: only while the tenant is live and only if the id is new. */
  insertRequested(vmId: string, storageGb: number, atMs: number): boolean {
    if (this.tenant.deleted || this.rows.has(vmId)) return false;
    this.rows.set(vmId, {
      vm_id: vmId,
      storage_gb: storageGb,
      status: 'requested',
      admission_attempt: 1,
      failure_reason: null,
      created_at_ms: atMs,
      destroyed_by: null,
      rejected_for: null,
    });
    return true;
  }

  /** reRequestVm: `rejected` at attempt - 1 → `requested` at attempt. */
  reRequest(vmId: string, attempt: number): boolean {
    const row = this.rows.get(vmId);
    if (row?.status !== 'rejected' || row.admission_attempt !== attempt - 1) return false;
    Object.assign(row, { status: 'requested', admission_attempt: attempt, failure_reason: null, rejected_for: null });
    return true;
  }

  /** transitionVm: moves only from one of `from`; a `failed` row takes the reason. */
  transition(vmId: string, from: readonly VmStatus[], to: VmStatus, failureReason: string | null = null): boolean {
    const row = this.rows.get(vmId);
    if (!row || !from.includes(row.status)) return false;
    row.status = to;
    if (to === 'failed') row.failure_reason = failureReason;
    return true;
  }

  /**
   * vm.activities.ts confirmAdmitted: `requested` → `provisioning`, only while the tenant is at the
   * admission epoch the boot's run confirms under. The row as it is afterwards.
   */
  confirm(vmId: string, epoch: number): { row: Row; confirmed: boolean } {
    const row = this.rows.get(vmId);
    if (!row) throw new Error(`VM ${vmId} has no row in Postgres; it is never spawned without one`);
    const confirmed = row.status === 'requested' && this.tenant.admission_epoch === epoch;
    if (confirmed) row.status = 'provisioning';
    return { row, confirmed };
  }

  /**
   * tenant.activities.ts loadTenantForRebuild, one repeatable-read transaction: admission_epoch =
   * greatest(admission_epoch, the run's start), then the quota, the totals, the rows in flight (by
   * vm_id) and the requests undecided (oldest first, then by vm_id), all as of that instant. The
   * snapshot carries the run's own epoch, even when a newer run raised the stored one further.
   */
  loadForRebuild(runEpoch: number): RebuildSnapshot {
    this.tenant.admission_epoch = Math.max(this.tenant.admission_epoch, runEpoch);
    const rows = [...this.rows.values()].sort((a, b) => (a.vm_id < b.vm_id ? -1 : a.vm_id > b.vm_id ? 1 : 0));
    return {
      totals: { quota: this.quota(), closed: this.tenant.deleted, ...this.totals() },
      admission_epoch: runEpoch,
      in_flight: rows
        .filter((row) => row.status === 'provisioning' || row.status === 'destroying')
        .map((row) => ({
          vm_id: row.vm_id,
          storage_gb: row.storage_gb,
          phase: row.status === 'destroying' ? 'destroying' : 'provisioning',
          created_at_ms: row.created_at_ms,
        })),
      undecided: rows
        .filter((row) => row.status === 'requested')
        .sort((a, b) => a.created_at_ms - b.created_at_ms)
        .map((row) => ({ vm_id: row.vm_id, storage_gb: row.storage_gb, created_at_ms: row.created_at_ms })),
    };
  }

  /** spawn-admission.ts recordRefusal: only this attempt's row, still `requested`. */
  recordRefusal(vmId: string, attempt: number, reason: string): boolean {
    const row = this.rows.get(vmId);
    if (row?.status !== 'requested' || row.admission_attempt !== attempt) return false;
    Object.assign(row, { status: 'rejected', failure_reason: reason, rejected_for: reason });
    return true;
  }

  holding(): Row[] {
    return [...this.rows.values()].filter((row) => HOLDING.includes(row.status));
  }

  /** tenantVmTotals. */
  totals(): { vms: number; storage_gb: number } {
    const holding = this.holding();
    return { vms: holding.length, storage_gb: holding.reduce((sum, row) => sum + row.storage_gb, 0) };
  }
}

// ---------------------------------------------------------------------------------------------
// Fleet

type FleetReply = { ok: true } | { ok: false; code: 'vm_tombstoned' | 'no_capacity' };

class Fleet {
  readonly live = new Set<string>();
  /** Destroyed VMs and bare tombstones: both refuse a create of their id for ever. */
  readonly tombstoned = new Set<string>();

  create(vmId: string, refuse: boolean): FleetReply {
    if (this.tombstoned.has(vmId)) return { ok: false, code: 'vm_tombstoned' };
    if (this.live.has(vmId)) return { ok: true };
    if (refuse) return { ok: false, code: 'no_capacity' };
    this.live.add(vmId);
    return { ok: true };
  }

  destroy(vmId: string): void {
    this.live.delete(vmId);
    this.tombstoned.add(vmId);
  }
}

// ---------------------------------------------------------------------------------------------
// Temporal: runs, updates, activity attempts

type RefusalReason = 'quota_exceeded' | 'in_flight_limit' | 'tenant_closed';
const REFUSAL_REASON: Record<SpawnRefusal['type'], RefusalReason> = {
  QuotaExceeded: 'quota_exceeded',
  InFlightLimit: 'in_flight_limit',
  TenantClosed: 'tenant_closed',
};

/** What a caller of an update hears back. `error`: not a decision (the API answers 5xx, the resolver retries). */
type Answer = { kind: 'status'; status: VmStatus } | { kind: 'refused'; reason: RefusalReason } | { kind: 'ok' } | { kind: 'error'; reason: string };

type Update =
  | { kind: 'spawn'; id: string; request: SpawnVmRequest; resend: boolean }
  | { kind: 'destroy'; id: string; vmId: string; storageGb: number; requestId: string }
  | { kind: 'quota'; id: string; quota: VersionedQuota }
  | { kind: 'close'; id: null };

/** A request on its way through an API replica (or the resolver): the update it sends, and where it is. */
interface Request {
  id: number;
  origin: 'api' | 'resolver';
  update: Update;
  pc: 'deliver' | 'waiting' | 'answer' | 'done';
  answer: Answer | null;
}

type ActivityKind = 'loadTenantForRebuild' | 'bootVm' | 'teardownVm' | 'failVm' | 'abandonAdmission' | 'recordTenantDeleted';
type ActivityResult =
  | { kind: 'snapshot'; snapshot: RebuildSnapshot; holding: string[] }
  | { kind: 'boot'; outcome: BootOutcome }
  | { kind: 'cancelled' }
  | { kind: 'timeout' }
  | { kind: 'settled'; released: boolean; storage_gb: number; fenced?: boolean }
  | { kind: 'deleted'; outcome: 'deleted' | 'has_vms' };

/** Work a workflow run awaits: one activity (with its current attempt), and what the run does with its result. */
interface Task {
  kind: ActivityKind;
  run: Run;
  vm: InFlightVm | null;
  vmId: string;
  reason: string | null;
  /**
   * The `epoch` of bootVm, failVm and abandonAdmission: the admission epoch of the run that scheduled
   * it (`s.epoch ?? 0`), which fences them. For loadTenantForRebuild: its run's start time.
   */
  epoch: number;
  attempt: Attempt | null;
  cancelRequested: boolean;
  waiters: Request[];
}

/** One attempt of an activity on some worker. `owner` null: a zombie (its run or attempt is over; it may still write). */
interface Attempt {
  id: number;
  /** The request whose work this is (the in-flight VM's cause): the same across retries and continue-as-new. */
  cause: string;
  kind: ActivityKind;
  vmId: string;
  reason: string | null;
  epoch: number;
  owner: Task | null;
  started: boolean;
  pc: 'start' | 'create' | 'await' | 'running' | 'failRequested' | 'mark' | 'destroy' | 'settle';
  reply: FleetReply | null;
  cancelRequested: boolean;
  storageRead: number;
}

class Run {
  /** Undefined while the run rebuilds (until it has taken loadTenantForRebuild's result). */
  state: TenantState | undefined;
  /** loadTenantForRebuild returned (committed); the run takes the result at its next workflow task. */
  loaded: { snapshot: RebuildSnapshot; holding: string[] } | null = null;
  /** Updates accepted while the run was still rebuilding: their handlers await loaded(). */
  queue: Array<{ update: Update; waiters: Request[] }> = [];
  /** Temporal's deduplication by update id, within this run. */
  readonly completedUpdates = new Map<string, Answer>();
  readonly tasks = new Set<Task>();
  grace: { pc: 'read' } | { pc: 'decide'; ids: string[]; statuses: Map<string, VmStatus> } | null = null;
  completed = false;
  /** The VMs this run (or the runs it continues) admitted, for fix G6 only. */
  admitted = new Set<string>();
  /** Continuations of a cancelled boot that Temporal reports after the handler that cancelled it. */
  deferred: Array<() => void> = [];

  /** workflowInfo().runStartTime (ms): later than that of every run before it. */
  constructor(
    readonly id: number,
    readonly startMs: number,
  ) {}
}

interface Decision {
  seq: number;
  quota: VersionedQuota;
}

// ---------------------------------------------------------------------------------------------
// The world

export class AdmissionWorld {
  readonly pg = new Postgres();
  readonly fleet = new Fleet();
  run: Run;
  private runs = 0;
  private lastStartMs = 0;
  private attempts: Attempt[] = [];
  private attemptIds = 0;
  /** Fleet creates sent and not yet landed. */
  private creates: Array<{ vmId: string; attempt: Attempt }> = [];
  private requests: Request[] = [];
  private requestIds = 0;
  private clock = 0;
  /** Ghost state: every admission decision a run made, with the quota it judged the VM against. */
  private readonly decisions = new Map<string, Decision>();
  private decisionSeq = 0;
  /** Boots of the run in charge refused their confirmation (`superseded`), failures of it fenced out: invariant (7). */
  private readonly supersededInCharge: string[] = [];
  /** Every 202 a client received. */
  private readonly accepted: Array<{ kind: 'spawn' | 'destroy'; vmId: string; attempt: number; status: VmStatus }> = [];
  /** Idempotency keys whose spawn was answered 202: a repeat is answered from the stored response (runOnce, src/vms/idempotency.ts). */
  private readonly answeredKeys = new Set<string>();
  readonly trace: string[] = [];

  constructor(private readonly options: ModelOptions = {}) {
    this.run = this.newRun();
    // The tenant's first run: rebuilt from an empty Postgres (admission epoch: its start, 1).
    this.stepRebuild();
    this.stepRebuild();
  }

  // -- actions ---------------------------------------------------------------------------------

  /** Takes one step of a schedule; returns what happened, or null when nothing could take it. */
  perform(action: Action): string | null {
    this.clock += 1000;
    switch (action.do) {
      case 'spawn':
        return this.apiSpawn(action.key);
      case 'destroy':
        return this.apiDestroy(action.key);
      case 'api':
        return this.stepRequest(
          pick(
            this.requests.filter((r) => r.pc === 'deliver' || r.pc === 'answer'),
            action.pick,
          ),
          action.lost,
        );
      case 'apiCrash': {
        const request = pick(this.requests, action.pick);
        if (!request) return null;
        const at = request.pc;
        this.endRequest(request);
        return `${describe(request)}: ${request.origin === 'api' ? 'API' : 'resolver'} crashed (request at ${at})`;
      }
      case 'activity':
        // The current run's own rebuild is stepped by 'rebuild'; every other attempt (a zombie rebuild too) here.
        return this.stepAttempt(
          pick(
            this.attempts.filter((a) => steppable(a) && !(a.kind === 'loadTenantForRebuild' && a.owner)),
            action.pick,
          ),
        );
      case 'fleet':
        return this.landCreate(action.pick, action.refuse);
      case 'workerCrash':
        // Any attempt a worker may hold: one it picked up and stopped in before its first write too.
        return this.crashWorker(pick(this.attempts, action.pick), action.zombie);
      case 'bootTimeout':
        return this.bootTimeout(
          pick(
            [...this.run.tasks].filter((t) => t.kind === 'bootVm'),
            action.pick,
          ),
        );
      case 'continueAsNew':
        return this.continueAsNew();
      case 'terminate':
        return this.terminate();
      case 'rebuild':
        return this.stepRebuild();
      case 'quota':
        return this.apiChangeQuota(action.maxVms, action.storageGb);
      case 'deleteTenant':
        return this.apiDeleteTenant();
      case 'resolver':
        return this.resolve(pick(this.resolvable(), action.pick));
      case 'grace':
        return this.stepGrace();
    }
  }

  /** vm.service.ts spawn, up to the update: the row `requested` (or found), then the request is on its way. */
  private apiSpawn(key: number): string | null {
    const vmId = `vm-${key}`;
    const storageGb = STORAGE_GB[key % STORAGE_GB.length]!;
    // runOnce: a repeat of an answered request replays the stored 202. A repeat while the first
    // still runs gets 409 until the first's lease runs out, which a slow API allows: the model lets it in.
    if (this.answeredKeys.has(vmId)) return `spawn ${vmId}: replayed the stored 202`;
    if (this.pg.tenant.deleted) return `spawn ${vmId}: 404 (tenant deleted)`;
    const request: SpawnVmRequest = {
      vm_id: vmId,
      shape: { vcpus: 1, memory_mb: 512, storage_gb: storageGb, image: 'debian-12', name: null },
      created_at: new Date(this.clock).toISOString(),
      context: CLIENT,
      quota: this.pg.quota(),
      attempt: 1,
    };
    let resend = false;
    const existing = this.pg.rows.get(vmId);
    if (existing?.status === 'requested') {
      Object.assign(request, { created_at: new Date(existing.created_at_ms).toISOString(), attempt: existing.admission_attempt });
      resend = true;
    } else if (existing?.status === 'rejected') {
      const attempt = existing.admission_attempt + 1;
      if (!this.pg.reRequest(vmId, attempt)) return this.accept('spawn', existing);
      request.attempt = attempt;
    } else if (existing) {
      return this.accept('spawn', existing);
    } else if (!this.pg.insertRequested(vmId, storageGb, this.clock)) {
      return `spawn ${vmId}: 404`;
    }
    const sent = this.newRequest('api', { kind: 'spawn', id: spawnUpdateId(vmId, request.attempt), request, resend });
    return `${describe(sent)}: row requested (attempt ${request.attempt})${resend ? ', sent again' : ''}`;
  }

  /** vm.service.ts destroy, up to the update: a request never confirmed ends at once; otherwise `destroying`. */
  private apiDestroy(key: number): string | null {
    const vmId = `vm-${key}`;
    const row = this.pg.rows.get(vmId);
    if (!row) return `destroy ${vmId}: 404`;
    const status = row.status;
    if (status === 'destroyed' || status === 'failed' || status === 'rejected') return `destroy ${vmId}: already ${status}`;
    if (status !== 'destroying') this.pg.transition(vmId, [status], status === 'requested' ? 'destroyed' : 'destroying');
    if (status === 'requested') {
      row.destroyed_by = `api#${++this.requestIds}`;
      this.accepted.push({ kind: 'destroy', vmId, attempt: row.admission_attempt, status: row.status });
      return `destroy ${vmId}: requested → destroyed (never admitted)`;
    }
    const sent = this.newRequest('api', { kind: 'destroy', id: `destroy-${vmId}`, vmId, storageGb: row.storage_gb, requestId: '' });
    return `${describe(sent)}: row ${status} → destroying`;
  }

  /** tenant.service.ts update: the quota stored (version + 1), then handed to the workflow. */
  private apiChangeQuota(maxVms: number, storageGb: number): string | null {
    if (this.pg.tenant.deleted) return null;
    Object.assign(this.pg.tenant, { max_vms: maxVms, storage_quota_gb: storageGb, quota_version: this.pg.tenant.quota_version + 1 });
    const quota = this.pg.quota();
    const sent = this.newRequest('api', { kind: 'quota', id: `quota-${TENANT}-${quota.version}`, quota });
    return `${describe(sent)}: stored ${JSON.stringify(quota)}`;
  }

  /** tenant.service.ts delete: refused while rows hold quota, else the close update. */
  private apiDeleteTenant(): string | null {
    if (this.pg.tenant.deleted) return null;
    if (this.pg.totals().vms > 0) return 'delete tenant: 409 (VMs hold quota)';
    const sent = this.newRequest('api', { kind: 'close', id: null });
    return `${describe(sent)}: asked`;
  }

  /** admission-resolver.ts: rows `requested` or `destroying`, each sent again under its own update id. */
  private resolvable(): Row[] {
    return [...this.pg.rows.values()].filter((row) => row.status === 'requested' || row.status === 'destroying').sort((a, b) => a.vm_id.localeCompare(b.vm_id));
  }

  private resolve(row: Row | undefined): string | null {
    if (!row) return null;
    const update: Update =
      row.status === 'requested'
        ? {
            kind: 'spawn',
            id: spawnUpdateId(row.vm_id, row.admission_attempt),
            request: {
              vm_id: row.vm_id,
              shape: { vcpus: 1, memory_mb: 512, storage_gb: row.storage_gb, image: 'debian-12', name: null },
              created_at: new Date(row.created_at_ms).toISOString(),
              context: RESOLVER,
              attempt: row.admission_attempt,
            },
            resend: true,
          }
        : { kind: 'destroy', id: `destroy-${row.vm_id}`, vmId: row.vm_id, storageGb: row.storage_gb, requestId: '' };
    const sent = this.newRequest('resolver', update);
    return `${describe(sent)}: row ${row.status}`;
  }

  private newRequest(origin: Request['origin'], update: Update): Request {
    const id = ++this.requestIds;
    // Every request has a request_id of its own (the API's, or one per resolver resend): the cause
    // its work carries, which teardownVm compares with the VM_DESTROYED entry.
    if (update.kind === 'spawn') update.request.context = { ...update.request.context, request_id: `${origin}#${id}` };
    if (update.kind === 'destroy') update.requestId = `${origin}#${id}`;
    const request: Request = { id, origin, update, pc: 'deliver', answer: null };
    this.requests.push(request);
    return request;
  }

  private endRequest(request: Request): void {
    request.pc = 'done';
    this.requests = this.requests.filter((r) => r !== request);
  }

  /** The next step of a request: deliver its update (lost before acceptance, or applied), or handle the answer. */
  private stepRequest(request: Request | undefined, lost: boolean): string | null {
    if (!request) return null;
    if (request.pc === 'deliver') {
      if (lost) {
        this.endRequest(request);
        return `${describe(request)}: update lost before acceptance (caller gets an error)`;
      }
      const answer = this.deliver(request.update, request);
      if (answer === 'waiting') {
        request.pc = 'waiting';
        return `${describe(request)}: update accepted, handler waiting`;
      }
      request.answer = answer;
      request.pc = 'answer';
      return `${describe(request)}: update applied → ${JSON.stringify(answer)}`;
    }
    if (request.pc !== 'answer' || !request.answer) return null;
    const note = this.handleAnswer(request, request.answer);
    this.endRequest(request);
    return `${describe(request)}: answered, ${note}`;
  }

  /** decideSpawn (and what vm.service.ts answers; it confirms nothing: the boot does), or the destroy's answer. */
  private handleAnswer(request: Request, answer: Answer): string {
    const { update } = request;
    if (update.kind === 'spawn') {
      const vmId = update.request.vm_id;
      const attempt = update.request.attempt ?? 1;
      if (answer.kind === 'refused') {
        const moved = this.pg.recordRefusal(vmId, attempt, answer.reason);
        return `refusal ${answer.reason}${moved ? ', row rejected' : ', row not requested at this attempt: unchanged'}`;
      }
      if (answer.kind !== 'status') return 'error (row unchanged)';
      if (request.origin === 'api') {
        this.accepted.push({ kind: 'spawn', vmId, attempt, status: answer.status });
        this.answeredKeys.add(vmId);
      }
      return `${request.origin === 'api' ? `202 ${answer.status}` : answer.status} (row ${this.pg.rows.get(vmId)?.status})`;
    }
    if (update.kind === 'destroy' && answer.kind === 'status') {
      const row = this.pg.rows.get(update.vmId)!;
      if (request.origin === 'api') this.accepted.push({ kind: 'destroy', vmId: update.vmId, attempt: row.admission_attempt, status: answer.status });
      return `202 ${answer.status}`;
    }
    return JSON.stringify(answer);
  }

  // -- Temporal and the workflow's handlers ------------------------------------------------------

  /** A run started without carried state: its first await is rebuildFromPostgres. */
  private newRun(): Run {
    const run = new Run(++this.runs, this.nextStart());
    this.launch(run, 'loadTenantForRebuild', null);
    return run;
  }

  /** A new run's start time: now, and later than any run's before it. */
  private nextStart(): number {
    this.lastStartMs = Math.max(this.clock, this.lastStartMs + 1);
    return this.lastStartMs;
  }

  /** executeUpdateWithStart, as far as the workflow is concerned. */
  private deliver(update: Update, waiter: Request): Answer | 'waiting' {
    const run = this.run;
    // Update-with-start on a workflow that completed (closed): WorkflowExecutionAlreadyStarted → TenantClosed.
    if (run.completed) return { kind: 'refused', reason: 'tenant_closed' };
    if (update.id !== null) {
      const done = run.completedUpdates.get(update.id);
      if (done) return done;
    }
    if (!run.state) {
      const same = update.id === null ? undefined : run.queue.find((q) => q.update.id === update.id);
      if (same) same.waiters.push(waiter);
      else run.queue.push({ update, waiters: [waiter] });
      return 'waiting';
    }
    // Refused by a validator: never in the history, so never deduplicated.
    const refused =
      update.kind === 'spawn' ? this.validateSpawn(run.state, update) : update.kind === 'destroy' ? this.validateDestroy(run.state, update) : null;
    if (refused) return refused;
    return this.apply(run, update, [waiter]);
  }

  private apply(run: Run, update: Update, waiters: Request[]): Answer | 'waiting' {
    const s = run.state!;
    let answer: Answer | 'waiting';
    switch (update.kind) {
      case 'spawn':
        answer = this.handleSpawn(run, s, update);
        break;
      case 'destroy':
        answer = this.handleDestroy(run, s, update);
        break;
      case 'quota':
        s.applyQuota({ ...update.quota, version: update.quota.version ?? s.quota.version + 1 });
        answer = { kind: 'ok' };
        break;
      case 'close':
        answer = this.handleClose(run, s, waiters);
        break;
    }
    for (const continuation of run.deferred.splice(0)) continuation();
    if (answer !== 'waiting' && update.id !== null) run.completedUpdates.set(update.id, answer);
    return answer;
  }

  /** The spawn update's validator (tenant.workflow.ts): refuses early what the handler would refuse. */
  private validateSpawn(s: TenantState, update: Extract<Update, { kind: 'spawn' }>): Answer | null {
    const { request } = update;
    if (s.inFlight.has(request.vm_id) || s.decided(request.vm_id)) return null;
    if (this.options.fixes?.rememberAdmitted && this.run.admitted.has(request.vm_id)) return null;
    if (this.options.adoptWhateverTheQuota && update.resend) return null;
    if (request.quota && request.quota.version > s.quota.version) return null;
    const refusal = s.spawnRefusal(request);
    return refusal ? { kind: 'refused', reason: REFUSAL_REASON[refusal.type] } : null;
  }

  /**
   * The destroy update's validator (tenant.workflow.ts): the in-flight limit is refused here only, so
   * never stored as the answer of `destroy-<vm_id>`. It runs only once the run holds its state: a
   * destroy accepted while the run rebuilds passes the limit (the handler no longer checks it, G13).
   */
  private validateDestroy(s: TenantState, update: Extract<Update, { kind: 'destroy' }>): Answer | null {
    if (s.inFlight.has(update.vmId) || s.decided(update.vmId)) return null;
    if (s.inFlight.size >= MAX_IN_FLIGHT) return { kind: 'refused', reason: 'in_flight_limit' };
    return null;
  }

  /** The spawn update's handler (tenant.workflow.ts), line for line. */
  private handleSpawn(run: Run, s: TenantState, update: Extract<Update, { kind: 'spawn' }>): Answer {
    const { request } = update;
    s.applyQuota(request.quota);
    const pending = s.decidePending(request.vm_id, causeOf(request.context));
    if (pending) {
      if (!pending.refusal) this.recordDecision(run, request.vm_id, s.quota);
      this.resume(run, pending.vm);
      if (pending.refusal) return { kind: 'refused', reason: REFUSAL_REASON[pending.refusal.type] };
      return { kind: 'status', status: 'provisioning' };
    }
    const decided = s.decided(request.vm_id);
    if (decided) return { kind: 'status', status: decided };
    if (this.options.fixes?.rememberAdmitted && run.admitted.has(request.vm_id)) return { kind: 'status', status: 'provisioning' };
    const refusal = this.options.adoptWhateverTheQuota && update.resend ? null : s.spawnRefusal(request);
    if (refusal) return { kind: 'refused', reason: REFUSAL_REASON[refusal.type] };
    // The quota spawnRefusal judged against: the newer of the held one and the request's.
    const judgedBy = request.quota && request.quota.version > s.quota.version ? request.quota : s.quota;
    const vm = s.admit(request, this.clock, BOOT_TIMEOUT_MS);
    this.recordDecision(run, vm.vm_id, judgedBy);
    this.launch(run, 'bootVm', vm);
    return { kind: 'status', status: 'provisioning' };
  }

  /** The destroy update's handler (tenant.workflow.ts), line for line. */
  private handleDestroy(run: Run, s: TenantState, update: Extract<Update, { kind: 'destroy' }>): Answer {
    const { vmId } = update;
    const inFlight = s.inFlight.get(vmId);
    const cause: WorkCause = { request_id: update.requestId, actor_token_id: null };
    // A request a rebuild holds undecided whose row was destroyed: decided now, then ended like any VM of its kind.
    if (inFlight?.phase === 'pending') {
      const pending = s.decidePending(vmId, cause);
      if (pending && !pending.refusal) this.recordDecision(run, vmId, s.quota);
      if (pending?.vm.phase === 'provisioning') pending.vm.phase = 'destroying';
      if (pending) this.resume(run, pending.vm);
      return { kind: 'status', status: pending?.vm.phase === 'lost' ? 'failed' : 'destroying' };
    }
    if (inFlight?.phase === 'provisioning') {
      inFlight.phase = 'destroying';
      inFlight.cause = cause;
      this.cancelBoot(run, vmId);
    }
    const decided = s.decided(vmId);
    if (decided) return { kind: 'status', status: decided };
    // No in-flight limit here: it is the validator's (G13).
    const vm = s.trackDestroy(vmId, update.storageGb, cause);
    this.launch(run, 'teardownVm', vm);
    return { kind: 'status', status: 'destroying' };
  }

  /** The close update's handler: stops admitting, then awaits recordTenantDeleted. */
  private handleClose(run: Run, s: TenantState, waiters: Request[]): Answer | 'waiting' {
    if (s.closed) return { kind: 'ok' };
    if (s.vms > 0) return { kind: 'error', reason: 'TenantHasVms' };
    s.closing = true;
    const task = this.launch(run, 'recordTenantDeleted', null, TENANT);
    task.waiters = waiters;
    return 'waiting';
  }

  private recordDecision(run: Run, vmId: string, quota: VersionedQuota): void {
    run.admitted.add(vmId);
    this.decisions.set(vmId, { seq: ++this.decisionSeq, quota: { ...quota } });
  }

  /** cancelBoot: a boot not yet picked up is cancelled at once; a running attempt hears it at its next heartbeat. */
  private cancelBoot(run: Run, vmId: string): void {
    const task = [...run.tasks].find((t) => t.kind === 'bootVm' && t.vmId === vmId);
    if (!task) return;
    task.cancelRequested = true;
    const attempt = task.attempt;
    if (attempt && !attempt.started) {
      this.dropAttempt(attempt);
      task.attempt = null;
      run.deferred.push(() => this.complete(task, { kind: 'cancelled' }));
    } else if (attempt) {
      attempt.cancelRequested = true;
    }
  }

  /** resume (tenant.workflow.ts). */
  private resume(run: Run, vm: InFlightVm): void {
    if (vm.phase === 'pending') return;
    if (vm.phase === 'destroying') this.launch(run, 'teardownVm', vm);
    else if (vm.phase === 'lost') this.launch(run, 'abandonAdmission', vm);
    else if (vm.failure) this.launch(run, 'failVm', vm, vm.failure);
    else this.launch(run, 'bootVm', vm);
  }

  private launch(run: Run, kind: ActivityKind, vm: InFlightVm | null, reason: string | null = null): Task {
    // A rebuild's epoch: its run's start (workflowInfo().runStartTime), the same for every attempt.
    const epoch = kind === 'loadTenantForRebuild' ? run.startMs : (run.state?.epoch ?? 0);
    const task: Task = { kind, run, vm, vmId: vm?.vm_id ?? TENANT, reason, epoch, attempt: null, cancelRequested: false, waiters: [] };
    task.attempt = this.newAttempt(task);
    run.tasks.add(task);
    return task;
  }

  private newAttempt(task: Task): Attempt {
    const attempt: Attempt = {
      id: ++this.attemptIds,
      cause: task.vm?.cause.request_id ?? '',
      kind: task.kind,
      vmId: task.vmId,
      reason: task.reason,
      epoch: task.epoch,
      owner: task,
      started: false,
      pc: 'start',
      reply: null,
      cancelRequested: false,
      storageRead: 0,
    };
    this.attempts.push(attempt);
    return attempt;
  }

  private dropAttempt(attempt: Attempt): void {
    this.attempts = this.attempts.filter((a) => a !== attempt);
  }

  /** What the run does when an activity it awaits ends (the code after each `await` in tenant.workflow.ts). */
  private complete(task: Task, result: ActivityResult): void {
    const run = task.run;
    run.tasks.delete(task);
    task.attempt = null;
    if (task.kind === 'loadTenantForRebuild') {
      if (result.kind === 'snapshot') run.loaded = { snapshot: result.snapshot, holding: result.holding };
      return;
    }
    const s = run.state!;
    const vm = task.vm;
    switch (task.kind) {
      case 'bootVm': {
        // provision(): after the boot attempt ends, however it ends.
        let failure: string | null = null;
        if (result.kind === 'boot') {
          // Only a boot of a run a rebuild replaced may be refused its confirmation; this run is the one in charge.
          if (result.outcome.failure_reason === 'superseded')
            this.supersededInCharge.push(`bootVm(${task.vmId}) of run ${run.id} (epoch ${task.epoch}; Postgres at ${this.pg.tenant.admission_epoch})`);
          if (result.outcome.status === 'destroy_requested') vm!.phase = 'destroying';
          failure = result.outcome.status === 'failed' ? (result.outcome.failure_reason ?? 'boot_failed') : null;
        } else if (result.kind === 'timeout') {
          failure = 'boot_timeout';
        }
        if (vm!.phase === 'destroying') this.launch(run, 'teardownVm', vm);
        else if (failure) {
          // Carried across continue-as-new: the next run fails it, it does not boot it again.
          vm!.failure = failure;
          this.launch(run, 'failVm', vm, failure);
        } else s.markRunning(vm!.vm_id);
        return;
      }
      case 'teardownVm':
        if (result.kind !== 'settled') return;
        if (vm!.release === 'if_released') vm!.storage_gb = result.storage_gb;
        s.settle(vm!.vm_id, 'destroyed', result.released);
        return;
      case 'failVm':
      case 'abandonAdmission':
        if (result.kind !== 'settled') return;
        // Only a failure of a run a rebuild replaced may be fenced out; this run is the one in charge.
        if (result.fenced)
          this.supersededInCharge.push(
            `${task.kind}(${task.vmId}) of run ${run.id} fenced out (epoch ${task.epoch}; Postgres at ${this.pg.tenant.admission_epoch})`,
          );
        s.settle(vm!.vm_id, 'failed', result.released);
        return;
      case 'recordTenantDeleted': {
        if (result.kind !== 'deleted') return;
        s.closing = false;
        let answer: Answer = { kind: 'error', reason: 'TenantHasVms' };
        if (result.outcome !== 'has_vms') {
          s.closed = true;
          answer = { kind: 'ok' };
        }
        for (const waiter of task.waiters) this.answerWaiter(waiter, answer);
        return;
      }
    }
  }

  private answerWaiter(waiter: Request, answer: Answer): void {
    if (waiter.pc !== 'waiting') return;
    waiter.answer = answer;
    waiter.pc = 'answer';
  }

  /** The run is over (continued as new, or terminated): what it awaited is abandoned, started attempts live on as zombies. */
  private abandon(run: Run): void {
    for (const task of run.tasks) {
      const attempt = task.attempt;
      if (attempt?.started) attempt.owner = null;
      else if (attempt) this.dropAttempt(attempt);
      for (const waiter of task.waiters) this.answerWaiter(waiter, { kind: 'error', reason: 'run ended' });
    }
    run.tasks.clear();
    for (const queued of run.queue) for (const waiter of queued.waiters) this.answerWaiter(waiter, { kind: 'error', reason: 'run ended' });
    run.queue = [];
    run.grace = null;
  }

  /** Continue-as-new: only once every handler has finished (allHandlersFinished). */
  private continueAsNew(): string | null {
    const run = this.run;
    const s = run.state;
    if (!s || run.completed || run.queue.length > 0 || [...run.tasks].some((t) => t.kind === 'recordTenantDeleted')) return null;
    if (s.closed && s.inFlight.size === 0) return null;
    // Through JSON, as Temporal carries it.
    const carried = JSON.parse(JSON.stringify(s.toCarried())) as ReturnType<TenantState['toCarried']>;
    this.abandon(run);
    const next = new Run(++this.runs, this.nextStart());
    next.state = TenantState.fromCarried(TENANT, MAX_IN_FLIGHT, carried);
    next.admitted = new Set(run.admitted);
    this.run = next;
    this.startRun(next);
    return `continue-as-new → run ${next.id} (carried vms ${carried.vms}, storage ${carried.storage_gb}, in flight ${carried.in_flight.map((vm) => `${vm.vm_id}:${vm.phase}`).join(' ') || 'none'})`;
  }

  /** An operator terminates the run; the next update-with-start starts one that rebuilds from Postgres. */
  private terminate(): string | null {
    if (this.run.completed) return null;
    const old = this.run;
    this.abandon(old);
    this.run = this.newRun();
    return `terminate run ${old.id} → run ${this.run.id} rebuilds from Postgres`;
  }

  /**
   * The current run's rebuild takes its next step: its loadTenantForRebuild attempt runs (one
   * transaction), or the run takes the result that activity returned (a later workflow task: updates
   * accepted meanwhile found no state, so no validator refused them).
   */
  private stepRebuild(): string | null {
    const run = this.run;
    if (run.loaded) {
      const { snapshot, holding } = run.loaded;
      run.loaded = null;
      this.rebuilt(run, snapshot, holding);
      const s = run.state!;
      return `run ${run.id} rebuilt (epoch ${s.epoch}): vms ${s.vms}, storage ${s.storageGb}, in flight ${[...s.inFlight.values()].map((vm) => `${vm.vm_id}:${vm.phase}`).join(' ') || 'none'}`;
    }
    const task = [...run.tasks].find((t) => t.kind === 'loadTenantForRebuild');
    return this.stepAttempt(task?.attempt ?? undefined);
  }

  /** rebuildFromPostgres, once loadTenantForRebuild has returned: the run's state from that one snapshot. */
  private rebuilt(run: Run, snapshot: RebuildSnapshot, holding: string[]): void {
    const inFlight: InFlightVm[] = snapshot.in_flight.map((vm) => ({
      vm_id: vm.vm_id,
      storage_gb: vm.storage_gb,
      phase: vm.phase,
      // Counted in the totals of the same snapshot: whoever settles it, this run gives its quota back.
      release: 'reserved',
      boot_deadline_ms: vm.phase === 'provisioning' ? vm.created_at_ms + BOOT_TIMEOUT_MS : null,
      cause: { request_id: 'recovery', actor_token_id: null },
    }));
    run.state = TenantState.rebuilt(TENANT, MAX_IN_FLIGHT, snapshot.totals, inFlight, snapshot.undecided, BOOT_TIMEOUT_MS, snapshot.admission_epoch);
    // Fix G6 only (read when it is on): the VMs a rebuilt run knows admitted are the rows holding quota.
    for (const vmId of holding) run.admitted.add(vmId);
    this.startRun(run);
    // The handlers that awaited loaded() run now, in the order they were accepted.
    for (const queued of run.queue.splice(0)) {
      const answer = this.apply(run, queued.update, queued.waiters);
      if (answer !== 'waiting') for (const waiter of queued.waiters) this.answerWaiter(waiter, answer);
    }
  }

  /** The start of runTenant after its state is there: resume the work in flight, and decide the pending later. */
  private startRun(run: Run): void {
    const s = run.state!;
    for (const vm of s.inFlight.values()) this.resume(run, vm);
    if (s.pendingIds().length > 0) run.grace = { pc: 'read' };
  }

  /** decideForgottenRequests, after the grace period: read the rows, then decide from what they say. */
  private stepGrace(): string | null {
    const run = this.run;
    const grace = run.grace;
    const s = run.state;
    if (!grace || !s) return null;
    if (grace.pc === 'read') {
      const ids = s.pendingIds();
      const statuses = new Map<string, VmStatus>();
      for (const id of ids) {
        const row = this.pg.rows.get(id);
        if (row) statuses.set(id, row.status);
      }
      run.grace = { pc: 'decide', ids, statuses };
      return `grace: read ${ids.map((id) => `${id}:${statuses.get(id)}`).join(' ')}`;
    }
    const notes: string[] = [];
    for (const vmId of grace.ids) {
      const status = grace.statuses.get(vmId);
      if (status === 'requested' || status === 'provisioning' || status === 'running' || status === 'destroying') {
        const decided = s.decidePending(vmId);
        if (decided) {
          if (!decided.refusal) this.recordDecision(run, vmId, s.quota);
          this.resume(run, decided.vm);
          notes.push(`${vmId} ${decided.refusal ? 'lost' : 'admitted'}`);
        }
      } else {
        s.releasePending(vmId);
        notes.push(`${vmId} dropped`);
      }
    }
    run.grace = null;
    return `grace: decided ${notes.join(', ') || 'nothing'}`;
  }

  // -- activities --------------------------------------------------------------------------------

  /** One step of an attempt, as vm.activities.ts / tenant.activities.ts do it; each step is one durable write. */
  private stepAttempt(attempt: Attempt | undefined): string | null {
    if (!attempt) return null;
    attempt.started = true;
    const who = `${attempt.kind}(${attempt.vmId})#${attempt.id}${attempt.owner ? '' : ' (zombie)'}`;
    const { vmId } = attempt;
    switch (attempt.kind) {
      case 'loadTenantForRebuild': {
        const snapshot = this.pg.loadForRebuild(attempt.epoch);
        const holding = this.pg.holding().map((row) => row.vm_id);
        const note =
          `${who}: epoch ${snapshot.admission_epoch} (Postgres at ${this.pg.tenant.admission_epoch}), vms ${snapshot.totals.vms}, storage ${snapshot.totals.storage_gb}, ` +
          `in flight ${snapshot.in_flight.map((vm) => `${vm.vm_id}:${vm.phase}`).join(' ') || 'none'}, undecided ${snapshot.undecided.map((vm) => vm.vm_id).join(' ') || 'none'}`;
        return this.finish(attempt, { kind: 'snapshot', snapshot, holding }, note);
      }
      case 'bootVm':
        switch (attempt.pc) {
          case 'start': {
            // confirmAdmitted (under this boot's epoch), then the switch on the row's status.
            const { row, confirmed } = this.pg.confirm(vmId, attempt.epoch);
            const status = row.status;
            const note = `${who}: confirm at epoch ${attempt.epoch}${confirmed ? ' requested → provisioning' : ` (row ${status}, Postgres at epoch ${this.pg.tenant.admission_epoch})`}`;
            // Not confirmed: this boot's run was superseded by a rebuild, which decides the request anew.
            if (status === 'requested')
              return this.finish(attempt, { kind: 'boot', outcome: { status: 'failed', failure_reason: 'superseded' } }, `${note}: superseded`);
            if (status === 'running') return this.finish(attempt, { kind: 'boot', outcome: { status: 'running', failure_reason: null } }, note);
            if (status === 'destroying' || status === 'destroyed')
              return this.finish(attempt, { kind: 'boot', outcome: { status: 'destroy_requested', failure_reason: null } }, note);
            if (status !== 'provisioning')
              return this.finish(attempt, { kind: 'boot', outcome: { status: 'failed', failure_reason: row.failure_reason ?? `VM is ${status}` } }, note);
            attempt.pc = 'create';
            return note;
          }
          case 'create':
            this.creates.push({ vmId, attempt });
            attempt.pc = 'await';
            return `${who}: fleet create sent`;
          case 'await':
            // A cancellation (heard at a heartbeat) aborts the call without waiting for the fleet.
            if (attempt.cancelRequested) return this.finish(attempt, { kind: 'cancelled' }, `${who}: cancelled`);
            if (!attempt.reply) return null;
            if (!attempt.reply.ok)
              return this.finish(
                attempt,
                { kind: 'boot', outcome: { status: 'failed', failure_reason: attempt.reply.code } },
                `${who}: fleet refused ${attempt.reply.code}`,
              );
            attempt.pc = 'running';
            return `${who}: fleet created`;
          case 'running': {
            const moved = this.pg.transition(vmId, ['provisioning'], 'running');
            return this.finish(
              attempt,
              { kind: 'boot', outcome: { status: 'running', failure_reason: null } },
              `${who}: ${moved ? 'provisioning → running' : 'row not provisioning, unchanged'}`,
            );
          }
          default:
            return null;
        }
      case 'teardownVm':
        if (attempt.pc === 'start') {
          attempt.storageRead = this.pg.rows.get(vmId)?.storage_gb ?? 0;
          this.fleet.destroy(vmId);
          attempt.pc = 'settle';
          return `${who}: fleet destroy`;
        } else {
          const releasedHere = this.settleRow(vmId, 'destroyed', null, attempt.cause);
          // Released when this call moved the row, or an earlier call for the same request did (its
          // VM_DESTROYED entry names the request).
          const released = releasedHere || this.pg.rows.get(vmId)?.destroyed_by === attempt.cause;
          return this.finish(
            attempt,
            { kind: 'settled', released, storage_gb: attempt.storageRead },
            `${who}: row → ${this.pg.rows.get(vmId)?.status} (released ${released})`,
          );
        }
      case 'failVm':
      case 'abandonAdmission':
        return this.stepFailAdmitted(attempt, who);
      case 'recordTenantDeleted': {
        let outcome: 'deleted' | 'has_vms' = 'deleted';
        if (!this.pg.tenant.deleted) {
          if (this.pg.totals().vms > 0) outcome = 'has_vms';
          else this.pg.tenant.deleted = true;
        }
        return this.finish(attempt, { kind: 'deleted', outcome }, `${who}: ${outcome}`);
      }
    }
  }

  /**
   * vm.activities.ts settleRow: released only if this call moved the row out of a status holding
   * quota (any of them, for a failure too: a boot past its deadline may have written running after
   * the fleet destroy); a `requested` row is closed too, releasing nothing.
   */
  private settleRow(vmId: string, to: 'destroyed' | 'failed', reason: string | null, cause: string): boolean {
    const released = this.pg.transition(vmId, HOLDING, to, reason);
    const moved = released || this.pg.transition(vmId, ['requested'], to, reason);
    // The VM_DESTROYED entry, recorded by the transaction that moved the row, under the work's cause.
    if (moved && to === 'destroyed') this.pg.rows.get(vmId)!.destroyed_by = cause;
    return released;
  }

  /**
   * vm.activities.ts failAdmitted (failVm; abandonAdmission with `admission_lost`), one statement a
   * step: read the row; still `requested`: failed at once, fenced by the attempt's epoch; otherwise (or
   * if that moved nothing) marked `destroying` from any status holding quota, fenced likewise (nothing
   * marked: it returns, released false); then the fleet destroy; then settleRow to `failed`.
   */
  private stepFailAdmitted(attempt: Attempt, who: string): string {
    const { vmId } = attempt;
    const reason = attempt.kind === 'abandonAdmission' ? 'admission_lost' : (attempt.reason ?? 'boot_failed');
    const current = this.pg.tenant.admission_epoch === attempt.epoch;
    const fence = `epoch ${attempt.epoch}, Postgres at ${this.pg.tenant.admission_epoch}`;
    const row = this.pg.rows.get(vmId);
    switch (attempt.pc) {
      case 'start':
        if (!row) return this.finish(attempt, { kind: 'settled', released: false, storage_gb: 0 }, `${who}: no row`);
        attempt.pc = row.status === 'requested' ? 'failRequested' : 'mark';
        return `${who}: read row ${row.status}`;
      case 'failRequested':
        attempt.pc = 'mark';
        if (current && this.pg.transition(vmId, ['requested'], 'failed', reason))
          return this.finish(attempt, { kind: 'settled', released: false, storage_gb: 0 }, `${who}: requested → failed (${reason})`);
        return `${who}: requested not failed (row ${row?.status}, ${fence})`;
      case 'mark':
        if (!current || !this.pg.transition(vmId, HOLDING, 'destroying')) {
          return this.finish(
            attempt,
            { kind: 'settled', released: false, storage_gb: 0, fenced: !current },
            `${who}: row ${row?.status} not marked (${current ? 'not holding quota' : `fenced out: ${fence}`}), released false`,
          );
        }
        attempt.pc = 'destroy';
        return `${who}: row → destroying`;
      case 'destroy':
        this.fleet.destroy(vmId);
        attempt.pc = 'settle';
        return `${who}: fleet destroy`;
      default: {
        const released = this.settleRow(vmId, 'failed', reason, attempt.cause);
        return this.finish(attempt, { kind: 'settled', released, storage_gb: 0 }, `${who}: row → ${this.pg.rows.get(vmId)?.status} (released ${released})`);
      }
    }
  }

  /** The attempt returns: its task's run carries on, unless the attempt is a zombie (nobody reads its result). */
  private finish(attempt: Attempt, result: ActivityResult, note: string): string {
    this.dropAttempt(attempt);
    const task = attempt.owner;
    if (!task || task.attempt !== attempt || !task.run.tasks.has(task)) return `${note} (result ignored)`;
    this.complete(task, result);
    return note;
  }

  /** A create reaches the fleet; its answer reaches the attempt that sent it, if that attempt is still waiting. */
  private landCreate(index: number, refuse: boolean): string | null {
    if (this.creates.length === 0) return null;
    const [sent] = this.creates.splice(index % this.creates.length, 1);
    const reply = this.fleet.create(sent!.vmId, refuse);
    const waiting = this.attempts.includes(sent!.attempt) && sent!.attempt.pc === 'await';
    if (waiting) sent!.attempt.reply = reply;
    return `fleet create ${sent!.vmId} lands → ${reply.ok ? 'live' : reply.code}${waiting ? '' : ' (sender gone)'}`;
  }

  /** A worker dies (the attempt stops) or hangs (it lives on as a zombie); Temporal retries the activity. */
  private crashWorker(attempt: Attempt | undefined, zombie: boolean): string | null {
    if (!attempt) return null;
    const task = attempt.owner;
    const who = `${attempt.kind}(${attempt.vmId})#${attempt.id}`;
    if (zombie && task) attempt.owner = null;
    else this.dropAttempt(attempt);
    if (!task || task.attempt !== attempt || !task.run.tasks.has(task)) return `${who}: worker killed`;
    if (task.kind === 'bootVm' && task.cancelRequested) {
      this.complete(task, { kind: 'cancelled' });
      return `${who}: worker ${zombie ? 'hung' : 'killed'}; the boot was being cancelled: cancelled`;
    }
    task.attempt = this.newAttempt(task);
    return `${who}: worker ${zombie ? 'hung (zombie)' : 'killed'}; retried as #${task.attempt.id}`;
  }

  /** The boot deadline passes: the run sees a timeout; a started attempt may still be running somewhere. */
  private bootTimeout(task: Task | undefined): string | null {
    if (!task) return null;
    const attempt = task.attempt;
    if (attempt?.started) attempt.owner = null;
    else if (attempt) this.dropAttempt(attempt);
    this.complete(task, { kind: 'timeout' });
    return `bootVm(${task.vmId}): boot deadline passed`;
  }

  // -- invariants --------------------------------------------------------------------------------

  /**
   * The invariants of docs/admission-protocol.md that hold at every instant.
   *
   * (1) Quota. Lowering a quota destroys nothing, so "rows holding quota ≤ max_vms" cannot be read
   * against the quota in force now. Stated precisely: let r* be the row holding quota whose
   * admission decision came last; then the rows holding quota number at most the max_vms, and hold
   * at most the storage_quota_gb, of the quota r* was judged against. Every other row holding quota
   * was admitted before r* and still holds it, so a workflow that never counts less than the rows
   * holding quota counted it when it admitted r*: its check then bounds them all. A quota lowered
   * later loosens nothing and binds nothing; an admission past the quota in force at its decision,
   * or one made from a count that forgot a row, breaks it.
   * (2) Every VM live at the fleet has a row holding quota, or a teardown or failure of it awaited
   * by the current run.
   * (3) Every 202 has a row; and a client told `202 provisioning` never finds that request
   * `rejected` (it may find it failed, as admission_lost: invariant 5). It may find it `requested`
   * for a while, since the boot confirms the row after the answer; once quiet, no row is (6).
   * (4) No row holds quota without an admission decision some run durably made for it.
   * (7) The admission epoch fences out only runs a rebuild replaced: a boot of the run in charge is
   * never refused its confirmation (`superseded`), nor a failVm or abandonAdmission of it fenced out.
   */
  checkAlways(): void {
    const holding = this.pg.holding();
    let last: Decision | undefined;
    for (const row of holding) {
      const decision = this.decisions.get(row.vm_id);
      if (!decision) this.violated(`(4) row ${row.vm_id} holds quota (${row.status}) without an admission decision`);
      if (!last || decision.seq > last.seq) last = decision;
    }
    if (last) {
      const storage = holding.reduce((sum, row) => sum + row.storage_gb, 0);
      const rows = holding.map((row) => `${row.vm_id}:${row.status}`).join(' ');
      if (holding.length > last.quota.max_vms)
        this.violated(
          `(1) ${holding.length} rows hold quota (${rows}), over max_vms ${last.quota.max_vms} of the quota the latest of them was admitted under (v${last.quota.version})`,
        );
      if (storage > last.quota.storage_quota_gb)
        this.violated(
          `(1) rows holding quota (${rows}) hold ${storage} GB, over storage_quota_gb ${last.quota.storage_quota_gb} of the quota the latest of them was admitted under (v${last.quota.version})`,
        );
    }
    for (const vmId of this.fleet.live) {
      const row = this.pg.rows.get(vmId);
      const removing = [...this.run.tasks].some((t) => t.vmId === vmId && (t.kind === 'teardownVm' || t.kind === 'failVm' || t.kind === 'abandonAdmission'));
      if (!(row && HOLDING.includes(row.status)) && !removing)
        this.violated(`(2) ${vmId} is live at the fleet, its row is ${row?.status ?? 'absent'} and no teardown or failure of it is in flight`);
    }
    for (const answer of this.accepted) {
      const row = this.pg.rows.get(answer.vmId);
      if (!row) this.violated(`(3) a 202 for ${answer.vmId} has no row`);
      if (answer.kind === 'spawn' && answer.status === 'provisioning' && row.admission_attempt === answer.attempt && row.status === 'rejected') {
        // G4 (a refusal recorded for a request another delivery admitted) is left out on demand.
        if (this.options.skipChecks?.acceptedThenRejected) continue;
        this.violated(
          `(3) a client holds 202 provisioning for ${answer.vmId} (attempt ${answer.attempt}), and its row is rejected (VM_SPAWN_REJECTED ${row.rejected_for}, failure_reason ${row.failure_reason})`,
        );
      }
    }
    if (this.supersededInCharge.length > 0)
      this.violated(`(7) a boot of the run in charge was refused its confirmation (superseded): ${this.supersededInCharge.join(', ')}`);
  }

  /**
   * Drains everything in flight, as a quiet system would: the rebuild, every attempt (zombies too),
   * every create to the fleet, every request, the grace period, and resolver rounds until nothing
   * changes. Invariants (1)–(4) are checked after each step of the drain.
   */
  drain(): void {
    for (let round = 0; round < 100; round++) {
      const before = this.fingerprint();
      const steps: Array<() => string | null> = [];
      if (this.run.loaded) steps.push(() => this.stepRebuild());
      for (let i = this.creates.length - 1; i >= 0; i--) steps.push(() => this.landCreate(0, false));
      for (const attempt of [...this.attempts]) steps.push(() => (this.attempts.includes(attempt) && steppable(attempt) ? this.stepAttempt(attempt) : null));
      for (const request of [...this.requests])
        steps.push(() => this.stepRequest(request.pc === 'deliver' || request.pc === 'answer' ? request : undefined, false));
      if (this.run.grace) steps.push(() => this.stepGrace());
      for (const step of steps) this.note(step());
      if (this.fingerprint() !== before) continue;
      // Nothing else moves: a resolver round, each resend carried to its answer.
      for (const row of this.resolvable()) {
        this.note(this.resolve(row));
        const resend = this.requests[this.requests.length - 1]!;
        this.note(this.stepRequest(resend, false));
        if (resend.pc === 'answer') this.note(this.stepRequest(resend, false));
      }
      if (this.fingerprint() === before) return;
    }
    this.violated('the system did not become quiet within 100 rounds');
  }

  /**
   * Once quiet (invariant 6): the workflow's usage equals the rows holding quota, the fleet runs
   * exactly the VMs Postgres has `running`, nothing is in flight, and no request is left `requested`.
   */
  checkQuiet(): void {
    const s = this.run.state;
    if (!s) return this.violated('(6) quiet, but the run has not rebuilt');
    const holding = this.pg.holding();
    const storage = holding.reduce((sum, row) => sum + row.storage_gb, 0);
    if (s.vms !== holding.length || s.storageGb !== storage) {
      this.violated(
        `(6) the workflow counts ${s.vms} VMs / ${s.storageGb} GB, rows holding quota are ${holding.length} / ${storage} GB (${holding.map((row) => `${row.vm_id}:${row.status}`).join(' ') || 'none'})`,
      );
    }
    const running = [...this.pg.rows.values()]
      .filter((row) => row.status === 'running')
      .map((row) => row.vm_id)
      .sort();
    const live = [...this.fleet.live].sort();
    if (running.join() !== live.join()) this.violated(`(6) the fleet runs [${live.join(' ')}], Postgres has running [${running.join(' ')}]`);
    const stuck = (row: Row) =>
      this.options.skipChecks?.reRequestOfSettledId && row.admission_attempt > 1 && (s.decided(row.vm_id) === 'failed' || s.decided(row.vm_id) === 'destroyed');
    const requested = [...this.pg.rows.values()].filter((row) => row.status === 'requested' && !stuck(row)).map((row) => row.vm_id);
    if (requested.length > 0) this.violated(`(6) rows left requested: ${requested.join(' ')}`);
    if (s.inFlight.size > 0)
      this.violated(`(6) quiet, but the workflow still has in flight: ${[...s.inFlight.values()].map((vm) => `${vm.vm_id}:${vm.phase}`).join(' ')}`);
  }

  /** Records a step that happened (null: nothing could take it), ends a closed run, and checks (1)–(4). */
  note(line: string | null): void {
    if (line === null) return;
    this.trace.push(line);
    this.endRunIfClosed();
    this.checkAlways();
  }

  /** runTenant returns once the tenant is closed, nothing is in flight and every handler has finished. */
  private endRunIfClosed(): void {
    const run = this.run;
    const s = run.state;
    if (!s || run.completed || !s.closed || s.inFlight.size > 0 || run.tasks.size > 0 || run.queue.length > 0) return;
    run.completed = true;
    this.trace.push(`run ${run.id} completes: tenant closed`);
  }

  private violated(message: string): never {
    const rows = [...this.pg.rows.values()].map((row) => `${row.vm_id}:${row.status}@${row.admission_attempt}`).join(' ');
    const s = this.run.state;
    const workflow = s
      ? `run ${this.run.id} (epoch ${s.epoch}): vms ${s.vms}, storage ${s.storageGb}, quota ${JSON.stringify(s.quota)}, in flight ${[...s.inFlight.values()].map((vm) => `${vm.vm_id}:${vm.phase}/${vm.release}`).join(' ') || 'none'}`
      : `run ${this.run.id}: rebuilding`;
    throw new InvariantViolation(
      `${message}\n  rows: ${rows || 'none'} (admission epoch ${this.pg.tenant.admission_epoch})\n  fleet live: ${[...this.fleet.live].join(' ') || 'none'}\n  ${workflow}\n  trace:\n    ${this.trace.join('\n    ')}`,
    );
  }

  private fingerprint(): string {
    const s = this.run.state;
    return JSON.stringify([
      [...this.pg.rows.values()].map((row) => [row.vm_id, row.status, row.admission_attempt]),
      this.pg.tenant,
      [...this.fleet.live],
      this.fleet.tombstoned.size,
      this.attempts.map((a) => [a.id, a.pc]),
      this.creates.length,
      this.requests.map((r) => [r.id, r.pc]),
      this.run.id,
      this.run.loaded !== null,
      this.run.grace?.pc,
      this.run.tasks.size,
      s ? [s.vms, s.storageGb, s.toCarried().in_flight.map((vm) => [vm.vm_id, vm.phase])] : null,
    ]);
  }

  private accept(kind: 'spawn', row: Row): string {
    this.accepted.push({ kind, vmId: row.vm_id, attempt: row.admission_attempt, status: row.status });
    this.answeredKeys.add(row.vm_id);
    return `spawn ${row.vm_id}: 202 with the existing row (${row.status})`;
  }
}

function pick<T>(items: readonly T[], index: number): T | undefined {
  return items.length === 0 ? undefined : items[index % items.length];
}

function steppable(attempt: Attempt): boolean {
  return attempt.pc !== 'await' || attempt.reply !== null || attempt.cancelRequested;
}

function describe(request: Request): string {
  const { update } = request;
  const who = request.origin === 'api' ? `api#${request.id}` : `resolver#${request.id}`;
  switch (update.kind) {
    case 'spawn':
      return `${who} spawn ${update.request.vm_id}`;
    case 'destroy':
      return `${who} destroy ${update.vmId}`;
    case 'quota':
      return `${who} quota v${update.quota.version}`;
    case 'close':
      return `${who} delete tenant`;
  }
}

/** Runs a schedule, checking invariants (1)–(4) after every step and all of them once the system is quiet. */
export function runSchedule(actions: readonly Action[], options: ModelOptions = {}): AdmissionWorld {
  const world = new AdmissionWorld(options);
  world.checkAlways();
  for (const action of actions) world.note(world.perform(action));
  world.trace.push('-- drain --');
  world.drain();
  world.checkQuiet();
  return world;
}

const slot = fc.nat({ max: 7 });

/** One step of a schedule, weighted towards the steps that make progress. */
export const actionArbitrary: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ do: fc.constant('spawn' as const), key: fc.nat({ max: STORAGE_GB.length - 1 }) }) },
  { weight: 5, arbitrary: fc.record({ do: fc.constant('destroy' as const), key: fc.nat({ max: STORAGE_GB.length - 1 }) }) },
  {
    weight: 9,
    arbitrary: fc.record({
      do: fc.constant('api' as const),
      pick: slot,
      lost: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ do: fc.constant('apiCrash' as const), pick: slot }) },
  { weight: 9, arbitrary: fc.record({ do: fc.constant('activity' as const), pick: slot }) },
  { weight: 3, arbitrary: fc.record({ do: fc.constant('fleet' as const), pick: slot, refuse: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ do: fc.constant('workerCrash' as const), pick: slot, zombie: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ do: fc.constant('bootTimeout' as const), pick: slot }) },
  { weight: 1, arbitrary: fc.constant({ do: 'continueAsNew' as const }) },
  { weight: 2, arbitrary: fc.constant({ do: 'terminate' as const }) },
  { weight: 3, arbitrary: fc.constant({ do: 'rebuild' as const }) },
  { weight: 2, arbitrary: fc.record({ do: fc.constant('quota' as const), maxVms: fc.nat({ max: 3 }), storageGb: fc.nat({ max: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ do: 'deleteTenant' as const }) },
  { weight: 3, arbitrary: fc.record({ do: fc.constant('resolver' as const), pick: slot }) },
  { weight: 2, arbitrary: fc.constant({ do: 'grace' as const }) },
);

export const scheduleArbitrary = (maxLength = 60): fc.Arbitrary<Action[]> => fc.array(actionArbitrary, { maxLength, size: 'max' });
