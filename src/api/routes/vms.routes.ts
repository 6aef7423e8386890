import { Router, type Request } from 'express';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/tables';
import type { Scope } from '../../shared/scopes';
import { isTenantId } from '../../shared/tenant-id';
import type { VmService } from '../../vms/vm.service';
import { listVmsQuerySchema, spawnVmSchema, vmIdSchema } from '../../vms/vm.schemas';
import { callerOf, requireTenantAccess } from '../access';
import { idempotencyKeyOf, runIdempotent } from '../idempotent-request';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';
import { isPlatformAdmin } from '../../auth/caller';

/**
 * The tenant a VM request acts in: always the caller's own. The platform admin may read a tenant's
 * VMs by naming it in `?tenant_id=`; VM writes need a tenant token.
 */
function actingTenant(req: Request, scope: Scope): string {
  const caller = callerOf(req);
  if (isPlatformAdmin(caller)) {
    const named = req.query.tenant_id;
    if (scope !== 'vm:read' || !isTenantId(named)) {
      throw problems.insufficientScope({ detail: 'VM writes act within a tenant: use a token issued to that tenant.' });
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

export function vmRoutes(vms: VmService, { db, now }: { db: Kysely<Database>; now: () => Date }): Router {
  const router = Router();

  router.post('/v1/vms', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:write');
    const key = idempotencyKeyOf(req);
    const shape = parseOrThrow(spawnVmSchema, req.body);
    const answer = await runIdempotent(db, req, tenantId, key, now, shape, async () => ({
      status: 202,
      body: await vms.spawn(tenantId, { ...shape, name: shape.name ?? null }, req.context, key),
    }));
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(answer.status).json(answer.body);
  });

  router.get('/v1/vms', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:read');
    const query = parseOrThrow(listVmsQuerySchema, req.query, 'query');
    const page = await vms.list(tenantId, query);
    if (!page) throw problems.invalid('Invalid query: cursor: is not a cursor from this API', [{ field: 'cursor', message: 'invalid cursor' }]);
    res.json(page);
  });

  router.get('/v1/vms/:vm_id', async (req, res) => {
    res.json(await vms.get(actingTenant(req, 'vm:read'), vmIdParam(req.params.vm_id)));
  });

  router.delete('/v1/vms/:vm_id', async (req, res) => {
    const tenantId = actingTenant(req, 'vm:write');
    const vmId = vmIdParam(req.params.vm_id);
    const key = idempotencyKeyOf(req);
    const answer = await runIdempotent(db, req, tenantId, key, now, null, async () => ({ status: 202, body: await vms.destroy(tenantId, vmId, req.context) }));
    if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(answer.status).json(answer.body);
  });

  return router;
}
