import type { Kysely } from 'kysely';
import type { Database, VmRow } from '../db/tables';
import { admissionEventId } from '../ledger/deterministic-ids';
import { appendAuditEvent } from '../ledger/ledger-append';
import type { LedgerWriter } from '../ledger/ledger-writer';
import { FailureType } from '../shared/failure-types';
import type { RequestContext } from '../shared/request-context';
import type { SpawnVmRequest, SpawnVmResult, VersionedQuota } from '../shared/tenant-workflow.messages';
import type { VmShape } from '../shared/vm';
import { failureDetails, failureType } from '../shared/workflow-failures';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { insertRequestedVm, reRequestVm } from './vm.repository';

export interface AdmissionDeps {
  db: Kysely<Database>;
  ledger: LedgerWriter;
  workflows: TenantWorkflowGateway;
  now: () => Date;
}

/** Refusals that end a request: its row becomes `rejected`, with this reason. */
const REFUSAL_REASONS: Readonly<Record<string, string>> = {
  [FailureType.QuotaExceeded]: 'quota_exceeded',
  [FailureType.InFlightLimit]: 'in_flight_limit',
  [FailureType.TenantClosed]: 'tenant_closed',
};

/** A refusal by the tenant workflow: a decision, not a failure to reach one. */
export function isAdmissionRefusal(error: unknown): boolean {
  return REFUSAL_REASONS[failureType(error) ?? ''] !== undefined;
}

export function shapeOf(row: VmRow): VmShape {
  return { vcpus: row.vcpus, memory_mb: row.memory_mb, storage_gb: row.storage_gb, image: row.image, name: row.name };
}

/**
 * Step 1 of an admission (docs/admission-protocol.md): the request is recorded before the tenant
 * workflow hears of it, as a row `requested` (no quota held) with VM_SPAWN_REQUESTED, in one
 * transaction. Returns the tenant's quota as that transaction read it, which the request carries to
 * the workflow; null when the tenant is deleted (or the id is taken).
 */
export async function recordSpawnRequest(deps: AdmissionDeps, tenantId: string, request: Omit<SpawnVmRequest, 'quota'>): Promise<VersionedQuota | null> {
  const at = new Date(request.created_at);
  return deps.ledger.run(async (trx) => {
    const quota = await insertRequestedVm(trx, { vm_id: request.vm_id, tenant_id: tenantId, shape: request.shape, created_at: at });
    if (quota === null) return null;
    await appendAuditEvent(
      trx,
      {
        event_id: admissionEventId(request.vm_id, 'VM_SPAWN_REQUESTED', 1),
        event_type: 'VM_SPAWN_REQUESTED',
        tenant_id: tenantId,
        vm_id: request.vm_id,
        occurred_at: at,
        context: request.context,
        details: { shape: request.shape },
      },
      { afterOwnTransition: true },
    );
    return quota;
  });
}

/** A refused request asked again under its Idempotency-Key: the row is `requested` again, as the next attempt. */
export async function recordSpawnRequestAgain(deps: AdmissionDeps, tenantId: string, row: VmRow, context: RequestContext): Promise<number | null> {
  const attempt = row.admission_attempt + 1;
  const at = deps.now();
  const moved = await deps.ledger.run(async (trx) => {
    if (!(await reRequestVm(trx, row.vm_id, attempt, at))) return false;
    await appendAuditEvent(
      trx,
      {
        event_id: admissionEventId(row.vm_id, 'VM_SPAWN_REQUESTED', attempt),
        event_type: 'VM_SPAWN_REQUESTED',
        tenant_id: tenantId,
        vm_id: row.vm_id,
        occurred_at: at,
        context,
        details: { shape: shapeOf(row), attempt },
      },
      { afterOwnTransition: true },
    );
    return true;
  });
  return moved ? attempt : null;
}

/**
 * Step 2: the tenant workflow decides, once per request (the update id names the VM and attempt).
 * Admitted: the boot activity the decision scheduled confirms the row, under the run's admission
 * epoch (never this caller, whose answer may come from a run a rebuild has since replaced). Refused: the row becomes `rejected`
 * with VM_SPAWN_REJECTED, and the refusal is rethrown. Any other error leaves the row `requested`:
 * a retry, or the admission resolver, asks again under the same update id.
 */
export async function decideSpawn(deps: AdmissionDeps, tenantId: string, request: SpawnVmRequest): Promise<SpawnVmResult> {
  let result: SpawnVmResult;
  try {
    result = await deps.workflows.spawn(tenantId, request);
  } catch (error) {
    const reason = REFUSAL_REASONS[failureType(error) ?? ''];
    if (reason) await recordRefusal(deps, tenantId, request, reason, failureDetails<Record<string, unknown>>(error));
    throw error;
  }
  return result;
}

async function recordRefusal(
  deps: AdmissionDeps,
  tenantId: string,
  request: SpawnVmRequest,
  reason: string,
  details: Record<string, unknown> | undefined,
): Promise<void> {
  const attempt = request.attempt ?? 1;
  const at = deps.now();
  await deps.ledger.run(async (trx) => {
    // Only this attempt's own row, still undecided: a later attempt, or a decision made meanwhile, stands.
    const refused = await trx
      .updateTable('vms')
      .set({ status: 'rejected', failure_reason: reason, updated_at: at })
      .where('vm_id', '=', request.vm_id)
      .where('status', '=', 'requested')
      .where('admission_attempt', '=', attempt)
      .executeTakeFirst();
    if (Number(refused.numUpdatedRows) === 0) return;
    await appendAuditEvent(
      trx,
      {
        event_id: admissionEventId(request.vm_id, 'VM_SPAWN_REJECTED', attempt),
        event_type: 'VM_SPAWN_REJECTED',
        tenant_id: tenantId,
        vm_id: request.vm_id,
        occurred_at: at,
        context: request.context,
        details: { reason, ...details, shape: request.shape },
      },
      { afterOwnTransition: true },
    );
  });
}
