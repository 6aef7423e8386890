import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/tables';
import { appendAuditEvent } from '../../ledger/ledger.repository';
import type { Logger } from '../../logging/logger';
import type { TenantWorkflowGateway } from '../../tenants/tenant-workflow-gateway';
import { findTenant, insertTenant, listTenants, markTenantDeleted, toTenantRecord, updateTenant } from '../../tenants/tenant.repository';
import { createTenantSchema, pageQuerySchema, tenantIdSchema, updateTenantSchema } from '../../tenants/tenant.schemas';
import { countVmsHoldingQuota } from '../../vms/vm.repository';
import { requirePlatformAdmin, requireTenantAccess } from '../access';
import { ApiError, problems } from '../problem';
import { parseOrThrow } from '../validation';
import { failureType } from '../workflow-failures';

export interface TenantRoutesDeps {
  db: Kysely<Database>;
  tenantWorkflows: TenantWorkflowGateway;
  log: Logger;
  now: () => Date;
}

export function tenantIdParam(value: unknown): string {
  const parsed = tenantIdSchema.safeParse(value);
  // A malformed id names no tenant: answer like any unknown tenant.
  if (!parsed.success) throw problems.tenantNotFound();
  return parsed.data;
}

export function tenantRoutes({ db, tenantWorkflows, log, now }: TenantRoutesDeps): Router {
  const router = Router();

  router.post('/v1/tenants', async (req, res) => {
    const caller = requirePlatformAdmin(req);
    const input = parseOrThrow(createTenantSchema, req.body);
    const at = now();
    const created = await db.transaction().execute(async (trx) => {
      const row = await insertTenant(trx, input, caller.token_id, at);
      if (!row) return null;
      await appendAuditEvent(trx, {
        event_id: randomUUID(),
        event_type: 'TENANT_CREATED',
        tenant_id: row.tenant_id,
        occurred_at: at,
        context: req.context,
        details: { display_name: row.display_name, max_vms: row.max_vms, storage_quota_gb: row.storage_quota_gb, api_rate_limit_rpm: row.api_rate_limit_rpm },
      });
      return row;
    });
    if (!created) {
      throw new ApiError(409, 'tenant_exists', 'Tenant exists', `Tenant id ${input.tenant_id} is taken; tenant ids are never reused.`);
    }
    // The workflow also starts on the tenant's first VM request, so a Temporal hiccup here is not fatal.
    await tenantWorkflows.ensureStarted(created.tenant_id, created).catch((error: unknown) => {
      log.warn({ err: error, tenant_id: created.tenant_id, request_id: req.context.request_id }, 'tenant workflow not started; it will start on first use');
    });
    res.status(201).location(`/v1/tenants/${created.tenant_id}`).json(toTenantRecord(created));
  });

  router.get('/v1/tenants', async (req, res) => {
    requirePlatformAdmin(req);
    const page = parseOrThrow(pageQuerySchema, req.query, 'query');
    const rows = await listTenants(db, page.limit + 1, page.cursor);
    const items = rows.slice(0, page.limit).map(toTenantRecord);
    res.json({ items, next_cursor: rows.length > page.limit ? items[items.length - 1]!.tenant_id : null });
  });

  router.get('/v1/tenants/:tenant_id', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    requireTenantAccess(req, tenantId, 'service:tenant-admin');
    const row = await findTenant(db, tenantId);
    if (!row) throw problems.tenantNotFound();
    res.json(toTenantRecord(row));
  });

  router.patch('/v1/tenants/:tenant_id', async (req, res) => {
    const caller = requirePlatformAdmin(req);
    const tenantId = tenantIdParam(req.params.tenant_id);
    if (req.body && typeof req.body === 'object' && 'tenant_id' in req.body) {
      throw problems.invalid('Invalid body: tenant_id: is immutable', [{ field: 'tenant_id', message: 'is immutable' }]);
    }
    const changes = parseOrThrow(updateTenantSchema, req.body);
    const at = now();
    const updated = await db.transaction().execute(async (trx) => {
      const before = await findTenant(trx, tenantId, { forUpdate: true });
      if (!before) return null;
      const after = await updateTenant(trx, tenantId, changes, at);
      await appendAuditEvent(trx, {
        event_id: randomUUID(),
        event_type: 'QUOTA_CHANGED',
        tenant_id: tenantId,
        occurred_at: at,
        context: req.context,
        details: { before: pickQuota(before), after: pickQuota(after), changed_by_token_id: caller.token_id },
      });
      return after;
    });
    if (!updated) throw problems.tenantNotFound();
    await tenantWorkflows.changeQuota(tenantId, updated, req.context);
    res.json(toTenantRecord(updated));
  });

  router.delete('/v1/tenants/:tenant_id', async (req, res) => {
    requirePlatformAdmin(req);
    const tenantId = tenantIdParam(req.params.tenant_id);
    const tenant = await findTenant(db, tenantId);
    if (!tenant) throw problems.tenantNotFound();
    const tenantHasVms = () => new ApiError(409, 'tenant_has_vms', 'Tenant has VMs', 'Destroy every VM of the tenant before deleting it.');
    if ((await countVmsHoldingQuota(db, tenantId)) > 0) throw tenantHasVms();
    // The workflow is the serialisation point: it refuses if a spawn slipped in after the check above.
    await tenantWorkflows.close(tenantId, req.context).catch((error: unknown) => {
      if (failureType(error) === 'TenantHasVms') throw tenantHasVms();
      throw error;
    });
    const at = now();
    const deleted = await db.transaction().execute(async (trx) => {
      const row = await markTenantDeleted(trx, tenantId, at);
      await appendAuditEvent(trx, { event_id: randomUUID(), event_type: 'TENANT_DELETED', tenant_id: tenantId, occurred_at: at, context: req.context });
      return row;
    });
    res.json(toTenantRecord(deleted));
  });

  return router;
}

function pickQuota(row: { display_name: string; max_vms: number; storage_quota_gb: number; api_rate_limit_rpm: number }) {
  return { display_name: row.display_name, max_vms: row.max_vms, storage_quota_gb: row.storage_quota_gb, api_rate_limit_rpm: row.api_rate_limit_rpm };
}
