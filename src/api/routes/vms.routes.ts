import { randomUUID } from 'node:crypto';
import { Router, type Request } from 'express';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/tables';
import { vmIdForIdempotencyKey, vmLifecycleEventId } from '../../ledger/deterministic-ids';
import { appendAuditEvent } from '../../ledger/ledger.repository';
import type { LedgerWriter } from '../../ledger/ledger-writer';
import type { Logger } from '../../logging/logger';
import { FailureType } from '../../shared/failure-types';
import type { Scope } from '../../shared/scopes';
import type { QuotaExceededDetails } from '../../shared/tenant-workflow.messages';
import { isTenantId } from '../../shared/tenant-id';
import type { TenantWorkflowGateway } from '../../tenants/tenant-workflow-gateway';
import { decodeVmCursor, encodeVmCursor } from '../../vms/vm-cursor';
import { findTenantVm, insertVmIfAbsent, listTenantVms, toVmRecord, transitionVm } from '../../vms/vm.repository';
import { listVmsQuerySchema, spawnVmSchema, vmIdSchema } from '../../vms/vm.schemas';
import { callerOf, requireTenantAccess } from '../access';
import { idempotencyKeyOf, runIdempotent } from '../idempotent-request';
import { ApiError, problems } from '../problem';
import { parseOrThrow } from '../validation';
import { failureDetails, failureType } from '../workflow-failures';

export interface VmRoutesDeps {
  db: Kysely<Database>;
  tenantWorkflows: TenantWorkflowGateway;
  ledger: LedgerWriter;
  log: Logger;
  now: () => Date;
}

/**
 * The tenant a VM request acts in: always the caller's own. The platform admin may read a tenant's
 * VMs by naming it in `?tenant_id=`; VM writes need a tenant token.
 */
function actingTenant(req: Request, scope: Scope): string {
  const caller = callerOf(req);
  if (caller.scope === 'service:admin') {
    const named = req.query.tenant_id;
    if (scope !== 'vm:read' || !isTenantId(named)) {
      throw new ApiError(403, 'insufficient_scope', 'Insufficient scope', 'VM writes act within a tenant: use a token issued to that tenant.');
    }
    return named;
  }
  return requireTenantAccess(req, caller.tenant_id ?? '', scope).tenant_id ?? '';
}

function vmIdParam(value: unknown): string {
  const parsed = vmIdSchema.safeParse(value);
  if (!parsed.success) throw problems.vmNotFound();
  return parsed.data;
}

export function vmRoutes({ db, tenantWorkflows, ledger, now }: VmRoutesDeps): Router {
  const router = Router();

  router.post('/v1/vms', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:write');
    const key = idempotencyKeyOf(req);
    const shape = parseOrThrow(spawnVmSchema, req.body);
    const answer = await runIdempotent(db, req, tenantId, key, now, shape, async () => {
      // The token's tenant exists and is not deleted (authentication checked); a deletion racing
      // this request is refused by the closed workflow (TenantClosed).
      const vmId = key ? vmIdForIdempotencyKey(tenantId, key) : randomUUID();
      const createdAt = now();
      const request = { vm_id: vmId, shape: { ...shape, name: shape.name ?? null }, created_at: createdAt.toISOString(), context: req.context };
      try {
        await tenantWorkflows.spawn(tenantId, request);
      } catch (error) {
        const type = failureType(error);
        if (type === FailureType.QuotaExceeded) {
          const details = failureDetails<QuotaExceededDetails>(error);
          // Keyed by the VM id, so a retried request (same Idempotency-Key, same VM id) is recorded once.
          await ledger.run((trx) => appendAuditEvent(trx, { event_id: vmLifecycleEventId(vmId, 'VM_SPAWN_REJECTED'), event_type: 'VM_SPAWN_REJECTED', tenant_id: tenantId, context: req.context, details: { reason: 'quota_exceeded', ...details, shape: request.shape } }));
          throw new ApiError(429, 'quota_exceeded', 'Quota exceeded', details ? `The spawn would exceed the tenant's ${details.limit} quota (limit ${details.limit_value}, in use ${details.in_use}, requested ${details.requested}).` : 'The spawn would exceed the tenant quota.', { ...details });
        }
        if (type === FailureType.TenantClosed) throw problems.tenantNotFound();
        throw error;
      }
      const row = await ledger.run(async (trx) => {
        await insertVmIfAbsent(trx, { vm_id: vmId, tenant_id: tenantId, shape: request.shape, created_at: createdAt });
        const inserted = await findTenantVm(trx, tenantId, vmId);
        await appendAuditEvent(trx, {
          event_id: vmLifecycleEventId(vmId, 'VM_SPAWN_REQUESTED'),
          event_type: 'VM_SPAWN_REQUESTED',
          tenant_id: tenantId,
          vm_id: vmId,
          occurred_at: createdAt,
          context: req.context,
          details: { shape: request.shape },
        });
        return inserted;
      });
      return { status: 202, body: toVmRecord(row!) };
    });
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(answer.status).json(answer.body);
  });

  router.get('/v1/vms', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:read');
    const query = parseOrThrow(listVmsQuerySchema, req.query, 'query');
    const after = query.cursor ? decodeVmCursor(query.cursor) : undefined;
    if (after === null) throw problems.invalid('Invalid query: cursor: is not a cursor from this API', [{ field: 'cursor', message: 'invalid cursor' }]);
    const rows = await listTenantVms(db, { tenant_id: tenantId, status: query.status, limit: query.limit + 1, after });
    const items = rows.slice(0, query.limit).map(toVmRecord);
    const last = items[items.length - 1];
    res.json({ items, next_cursor: rows.length > query.limit && last ? encodeVmCursor(last.created_at, last.vm_id) : null });
  });

  router.get('/v1/vms/:vm_id', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:read');
    const row = await findTenantVm(db, tenantId, vmIdParam(req.params.vm_id));
    if (!row) throw problems.vmNotFound();
    res.json(toVmRecord(row));
  });

  router.delete('/v1/vms/:vm_id', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:write');
    const vmId = vmIdParam(req.params.vm_id);
    const key = idempotencyKeyOf(req);
    const answer = await runIdempotent(db, req, tenantId, key, now, null, async () => {
      // Ownership is checked here, before the workflow or the fleet hear of the request.
      const existing = await findTenantVm(db, tenantId, vmId);
      if (!existing) throw problems.vmNotFound();
      if (existing.status === 'destroyed' || existing.status === 'failed' || existing.status === 'destroying') {
        return { status: 202, body: toVmRecord(existing) };
      }
      try {
        await tenantWorkflows.destroy(tenantId, vmId, req.context);
      } catch (error) {
        if (failureType(error) === FailureType.VmNotFound) throw problems.vmNotFound();
        throw error;
      }
      const at = now();
      const row = await ledger.run(async (trx) => {
        await transitionVm(trx, vmId, ['provisioning', 'running'], 'destroying', at);
        const changed = await findTenantVm(trx, tenantId, vmId); // before the append, as for spawns
        await appendAuditEvent(trx, {
          event_id: vmLifecycleEventId(vmId, 'VM_DESTROY_REQUESTED'),
          event_type: 'VM_DESTROY_REQUESTED',
          tenant_id: tenantId,
          vm_id: vmId,
          occurred_at: at,
          context: req.context,
        });
        return changed;
      });
      return { status: 202, body: toVmRecord(row!) };
    });
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(answer.status).json(answer.body);
  });

  return router;
}
