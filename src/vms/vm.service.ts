import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { problems } from '../api/problem';
import { failureDetails, failureType, refusalProblem } from '../api/workflow-failures';
import type { Database, VmRow } from '../db/tables';
import { vmIdForIdempotencyKey, vmLifecycleEventId } from '../ledger/deterministic-ids';
import { appendAuditEvent } from '../ledger/ledger.repository';
import type { LedgerWriter } from '../ledger/ledger-writer';
import { FailureType } from '../shared/failure-types';
import type { RequestContext } from '../shared/request-context';
import type { QuotaExceededDetails, SpawnVmRequest } from '../shared/tenant-workflow.messages';
import type { VmRecord, VmShape, VmStatus } from '../shared/vm';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { findTenant, versionedQuotaOf } from '../tenants/tenant.repository';
import { decodeVmCursor, encodeVmCursor } from './vm-cursor';
import { findTenantVm, listTenantVms, toVmRecord } from './vm.repository';

export interface VmServiceDeps {
  db: Kysely<Database>;
  ledger: LedgerWriter;
  workflows: TenantWorkflowGateway;
  now: () => Date;
}

const SETTLED: readonly VmStatus[] = ['destroyed', 'failed'];

/**
 * The VM protocols. A spawn is admitted by the tenant workflow, which checks and reserves quota in
 * one step and writes the VM row and VM_SPAWN_REQUESTED before it answers: when a client hears 202,
 * Postgres holds the VM. A destroy is checked for ownership here, before the workflow or the fleet
 * hear of it. The API writes no VM fact itself except a quota refusal (VM_SPAWN_REJECTED).
 */
export function createVmService({ db, ledger, workflows, now }: VmServiceDeps) {
  /**
   * The answer for a VM the workflow accepted. A run started before state version 2 writes the row
   * a moment later, from its activity; until then the request says what the row will hold.
   */
  async function answer(tenantId: string, vmId: string, status: VmStatus, pending?: Pending): Promise<VmRecord> {
    const row = await findTenantVm(db, tenantId, vmId);
    if (row) return withStatus(row, status);
    if (!pending) throw problems.vmNotFound();
    return fromRequest(tenantId, vmId, status, pending);
  }

  return {
    async spawn(tenantId: string, shape: VmShape, context: RequestContext, idempotencyKey?: string): Promise<VmRecord> {
      const tenant = await findTenant(db, tenantId);
      if (!tenant) throw problems.tenantNotFound();
      const vmId = idempotencyKey ? vmIdForIdempotencyKey(tenantId, idempotencyKey) : randomUUID();
      // A retry with the same Idempotency-Key: Postgres may already hold the VM it made. Past
      // provisioning, the workflow has it; still provisioning, the workflow may have lost the update
      // that wrote it (a Temporal crash after the row committed), so it is sent again, to adopt.
      const existing = idempotencyKey ? await findTenantVm(db, tenantId, vmId) : undefined;
      if (existing && existing.status !== 'provisioning') return toVmRecord(existing);
      const request: SpawnVmRequest = { vm_id: vmId, shape, created_at: now().toISOString(), context, quota: versionedQuotaOf(tenant), ...(existing ? { adopt: true } : {}) };
      let status: VmStatus;
      try {
        ({ status } = await workflows.spawn(tenantId, request));
      } catch (error) {
        if (failureType(error) === FailureType.QuotaExceeded) {
          // Keyed by the VM id, so a retried request (same Idempotency-Key, same VM id) is recorded once.
          const details = failureDetails<QuotaExceededDetails>(error);
          await ledger.run((trx) =>
            appendAuditEvent(trx, { event_id: vmLifecycleEventId(vmId, 'VM_SPAWN_REJECTED'), event_type: 'VM_SPAWN_REJECTED', tenant_id: tenantId, context, details: { reason: 'quota_exceeded', ...details, shape } }),
          );
        }
        throw refusalProblem(error) ?? error;
      }
      // A fresh VM id (no Idempotency-Key): the row is this request's, written as it says, so the
      // answer comes from the request without reading the row back. A key may name a VM that an
      // earlier request with the same key made: that answer is read.
      return idempotencyKey ? answer(tenantId, vmId, status, request) : fromRequest(tenantId, vmId, status, request);
    },

    async destroy(tenantId: string, vmId: string, context: RequestContext): Promise<VmRecord> {
      const existing = await findTenantVm(db, tenantId, vmId);
      if (!existing) throw problems.vmNotFound();
      // A destroying VM is sent again: its destroy may be one the workflow lost (see spawn).
      if (SETTLED.includes(existing.status as VmStatus)) return toVmRecord(existing);
      try {
        const { status } = await workflows.destroy(tenantId, vmId, context);
        return answer(tenantId, vmId, status);
      } catch (error) {
        throw refusalProblem(error) ?? error;
      }
    },

    async get(tenantId: string, vmId: string): Promise<VmRecord> {
      const row = await findTenantVm(db, tenantId, vmId);
      if (!row) throw problems.vmNotFound();
      return toVmRecord(row);
    },

    /** A page of the tenant's VMs; `cursor` is from the previous page (null when it is not one of ours). */
    async list(tenantId: string, query: { status?: VmStatus; limit: number; cursor?: string }): Promise<{ items: VmRecord[]; next_cursor: string | null } | null> {
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

/** What the row of an accepted request holds (or will, from a version-1 run's activity), with the workflow's status. */
function fromRequest(tenantId: string, vmId: string, status: VmStatus, pending: Pending): VmRecord {
  return { vm_id: vmId, tenant_id: tenantId, ...pending.shape, status, failure_reason: null, created_at: pending.created_at, updated_at: pending.created_at };
}

/** The row, with the workflow's status when the row has not caught up with it yet (version-1 runs). */
function withStatus(row: VmRow, status: VmStatus): VmRecord {
  const record = toVmRecord(row);
  return record.status === 'provisioning' || record.status === 'running' ? { ...record, status: status === 'destroying' ? 'destroying' : record.status } : record;
}
