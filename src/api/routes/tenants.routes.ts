import { Router } from 'express';
import type { TenantService } from '../../tenants/tenant.service';
import { createTenantSchema, pageQuerySchema, tenantIdSchema, updateTenantSchema } from '../../tenants/tenant.schemas';
import { requirePlatformAdmin, requireTenantAccess } from '../access';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';

export function tenantIdParam(value: unknown): string {
  const parsed = tenantIdSchema.safeParse(value);
  // A malformed id names no tenant: answer like any unknown tenant.
  if (!parsed.success) throw problems.tenantNotFound();
  return parsed.data;
}

export function tenantRoutes(tenants: TenantService): Router {
  const router = Router();

  router.post('/v1/tenants', async (req, res) => {
    const caller = requirePlatformAdmin(req);
    const input = parseOrThrow(createTenantSchema, req.body);
    const created = await tenants.create(input, caller.token_id, req.context);
    res.status(201).location(`/v1/tenants/${created.tenant_id}`).json(created);
  });

  router.get('/v1/tenants', async (req, res) => {
    requirePlatformAdmin(req);
    const page = parseOrThrow(pageQuerySchema, req.query, 'query');
    res.json(await tenants.list(page.limit, page.cursor));
  });

  router.get('/v1/tenants/:tenant_id', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    requireTenantAccess(req, tenantId, 'service:tenant-admin');
    res.json(await tenants.get(tenantId));
  });

  router.patch('/v1/tenants/:tenant_id', async (req, res) => {
    const caller = requirePlatformAdmin(req);
    const tenantId = tenantIdParam(req.params.tenant_id);
    if (req.body && typeof req.body === 'object' && 'tenant_id' in req.body) {
      throw problems.invalid('Invalid body: tenant_id: is immutable', [{ field: 'tenant_id', message: 'is immutable' }]);
    }
    const changes = parseOrThrow(updateTenantSchema, req.body);
    res.json(await tenants.update(tenantId, changes, caller.token_id, req.context));
  });

  router.delete('/v1/tenants/:tenant_id', async (req, res) => {
    requirePlatformAdmin(req);
    res.json(await tenants.delete(tenantIdParam(req.params.tenant_id), req.context));
  });

  return router;
}
