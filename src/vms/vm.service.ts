import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, VmRow } from '../db/tables';
import { recordVmStep } from '../ledger/vm-steps';
import { vmIdForIdempotencyKey } from '../ledger/deterministic-ids';
import type { LedgerWriter } from '../ledger/ledger-writer';
import { faultPoint } from '../testing/fault-point';
import { NotFoundError } from '../shared/domain-errors';
import type { RequestContext } from '../shared/request-context';
import type { SpawnVmRequest } from '../shared/tenant-workflow.messages';
import type { VmRecord, VmShape, VmStatus } from '../shared/vm';
import { workflowRefusal } from '../shared/workflow-failures';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { findTenant, versionedQuotaOf } from '../tenants/tenant.repository';
import { runOnce, type IdempotentRequest, type Outcome } from './idempotency';
import { decodeVmCursor, encodeVmCursor } from './vm-cursor';
import { recordSpawnRequest, recordSpawnRequestAgain, decideSpawn, type AdmissionDeps } from './spawn-admission';
import { findTenantVm, listTenantVms, toVmRecord, transitionVm } from './vm.repository';
import type { SpawnVmInput } from './vm.schemas';

export interface VmServiceDeps {
  db: Kysely<Database>;
  ledger: LedgerWriter;
  workflows: TenantWorkflowGateway;
  now: () => Date;
}

const SETTLED: readonly VmStatus[] = ['destroyed', 'failed', 'rejected'];
/** Statuses a row reaches only after the workflow admitted its request. */
const ADMITTED: readonly VmStatus[] = ['provisioning', 'running', 'destroying', 'destroyed', 'failed'];
/**
 * How long after recording a spawn the API checks the row before asking the workflow: far below
 * the admission resolver's wait (ADMISSION_RESOLVE_AFTER_MS, at least 1 s) before it resends a
 * request, so no request is decided by the resolver unseen; far above the usual few milliseconds.
 */
const LATE_UPDATE_AFTER_MS = 500;

/**
 * The VM protocols (docs/admission-protocol.md). A spawn is recorded `requested` in Postgres, then
 * decided by the tenant workflow, which checks and reserves quota in one step; only that decision
 * lets the row hold quota. A destroy is checked for ownership here, recorded (`destroying`, or at
 * once `destroyed` for a request never confirmed), and then the workflow is told.
 */
export function createVmService({ db, ledger, workflows, now }: VmServiceDeps) {
  const admission: AdmissionDeps = { db, ledger, workflows, now };

  /** The answer for a VM the workflow has decided: the row, with the workflow's status where the row has not caught up yet. */
  async function answer(tenantId: string, vmId: string, status: VmStatus): Promise<VmRecord> {
    const row = await findTenantVm(db, tenantId, vmId);
    if (!row) throw new NotFoundError('vm');
    return withStatus(row, status);
  }

  /** Moves the row into its destroy and records VM_DESTROY_REQUESTED; a request never confirmed ends at once. */
  async function recordDestroy(row: VmRow, context: RequestContext): Promise<boolean> {
    const at = now();
    const requestedOnly = row.status === 'requested';
    return ledger.run(async (trx) => {
      if (!(await transitionVm(trx, row.vm_id, [row.status as VmStatus], requestedOnly ? 'destroyed' : 'destroying', at))) return false;
      const step = { tenant_id: row.tenant_id, vm_id: row.vm_id, context, at };
      await recordVmStep(trx, { ...step, event_type: 'VM_DESTROY_REQUESTED' }, { afterOwnTransition: true });
      // Not yet admitted, so nothing at the fleet: a boot the workflow may still start finds the row
      // destroyed and stops before the fleet hears of it.
      if (requestedOnly)
        await recordVmStep(trx, { ...step, event_type: 'VM_DESTROYED', details: { reason: 'destroyed_before_admission' } }, { afterOwnTransition: true });
      return true;
    });
  }

  async function get(tenantId: string, vmId: string): Promise<VmRecord> {
    const row = await findTenantVm(db, tenantId, vmId);
    if (!row) throw new NotFoundError('vm');
    return toVmRecord(row);
  }

  /** Records the request, then has the workflow decide it; the VM id follows from the Idempotency-Key, so a retry names the same VM. */
  async function spawnVm(tenantId: string, shape: VmShape, context: RequestContext, idempotencyKey: string | undefined): Promise<VmRecord> {
    const vmId = idempotencyKey ? vmIdForIdempotencyKey(tenantId, idempotencyKey) : randomUUID();
    const created_at = now().toISOString();
    // A retry with the same Idempotency-Key names the VM an earlier request made.
    const existing = idempotencyKey ? await findTenantVm(db, tenantId, vmId) : undefined;
    let request: SpawnVmRequest;
    if (existing === undefined) {
      // The common case, in one transaction: the row, its ledger entry, and the quota it is decided against.
      const quota = await recordSpawnRequest(admission, tenantId, { vm_id: vmId, shape, created_at, context, attempt: 1 });
      if (quota === null) throw new NotFoundError('tenant');
      request = { vm_id: vmId, shape, created_at, context, quota, attempt: 1 };
    } else {
      const tenant = await findTenant(db, tenantId);
      if (!tenant) throw new NotFoundError('tenant');
      request = { vm_id: vmId, shape, created_at, context, quota: versionedQuotaOf(tenant), attempt: 1 };
      if (existing.status === 'requested') {
        // Recorded, but nobody saw the decision: ask for it again under the same update id.
        Object.assign(request, { created_at: existing.created_at.toISOString(), attempt: existing.admission_attempt });
      } else if (existing.status === 'rejected') {
        const attempt = await recordSpawnRequestAgain(admission, tenantId, existing, context);
        if (attempt === null) return get(tenantId, vmId);
        request.attempt = attempt;
      } else {
        return toVmRecord(existing);
      }
    }
    const recordedAt = performance.now();
    faultPoint('api.spawn.after-request-recorded');
    // Late (this process hung, or waited long on Postgres): the admission resolver may have had the
    // request decided meanwhile, possibly in an earlier workflow run that a continue-as-new ended; a
    // later run does not remember a VM that already runs and would count it twice
    // (docs/admission-protocol.md, "Known limits"). A decided row answers for itself.
    if (performance.now() - recordedAt > LATE_UPDATE_AFTER_MS) {
      const current = await findTenantVm(db, tenantId, vmId);
      if (current && ADMITTED.includes(current.status as VmStatus)) return toVmRecord(current);
    }
    let status: VmStatus;
    try {
      ({ status } = await decideSpawn(admission, tenantId, request));
    } catch (error) {
      throw workflowRefusal(error) ?? error;
    }
    faultPoint('api.spawn.after-decision');
    return status === 'provisioning' ? fromRequest(tenantId, vmId, status, request) : answer(tenantId, vmId, status);
  }

  async function destroyVm(tenantId: string, vmId: string, context: RequestContext): Promise<VmRecord> {
    // The row may move under us (a boot confirming it): read, try, read again, a few times at most.
    for (let tries = 0; tries < 3; tries++) {
      const row = await findTenantVm(db, tenantId, vmId);
      if (!row) throw new NotFoundError('vm');
      const status = row.status as VmStatus;
      if (SETTLED.includes(status)) return toVmRecord(row);
      // A destroying VM is sent again: its destroy may be one the workflow never heard.
      if (status !== 'destroying' && !(await recordDestroy(row, context))) continue;
      if (status === 'requested') return get(tenantId, vmId);
      faultPoint('api.destroy.after-request-recorded');
      try {
        const decided = await workflows.destroy(tenantId, vmId, context, row.storage_gb);
        return await answer(tenantId, vmId, decided.status);
      } catch (error) {
        throw workflowRefusal(error) ?? error;
      }
    }
    return get(tenantId, vmId);
  }

  return {
    /** A spawn, at most once per Idempotency-Key: a repeat gets the first answer. */
    spawn(tenantId: string, input: SpawnVmInput, context: RequestContext, idempotency?: IdempotentRequest): Promise<Outcome<VmRecord>> {
      return runOnce({ db, now }, tenantId, idempotency, input, () => spawnVm(tenantId, { ...input, name: input.name ?? null }, context, idempotency?.key));
    },

    /** A destroy, at most once per Idempotency-Key. */
    destroy(tenantId: string, vmId: string, context: RequestContext, idempotency?: IdempotentRequest): Promise<Outcome<VmRecord>> {
      return runOnce({ db, now }, tenantId, idempotency, null, () => destroyVm(tenantId, vmId, context));
    },

    get,

    /** A page of the tenant's VMs; `cursor` is from the previous page (null when it is not one of ours). */
    async list(
      tenantId: string,
      query: { status?: VmStatus; limit: number; cursor?: string },
    ): Promise<{ items: VmRecord[]; next_cursor: string | null } | null> {
      const after = query.cursor ? decodeVmCursor(query.cursor) : undefined;
      if (after === null) return null;
      const rows = await listTenantVms(db, { tenant_id: tenantId, status: query.status, limit: query.limit + 1, after });
      const items = rows.slice(0, query.limit).map(toVmRecord);
      const last = items[items.length - 1];
      return { items, next_cursor: rows.length > query.limit && last ? encodeVmCursor(last.created_at, last.vm_id) : null };
    },
  };
}

export type VmService = ReturnType<typeof createVmService>;

type Pending = { shape: VmShape; created_at: string };

/** What the row of an admitted request holds, with the workflow's status. */
function fromRequest(tenantId: string, vmId: string, status: VmStatus, pending: Pending): VmRecord {
  return { vm_id: vmId, tenant_id: tenantId, ...pending.shape, status, failure_reason: null, created_at: pending.created_at, updated_at: pending.created_at };
}

/** The row, with the workflow's status when the row has not caught up with it yet. */
function withStatus(row: VmRow, status: VmStatus): VmRecord {
  const record = toVmRecord(row);
  if (record.status === 'requested' || record.status === 'provisioning' || record.status === 'running') {
    return { ...record, status: status === 'destroying' || record.status === 'requested' ? status : record.status };
  }
  return record;
}
