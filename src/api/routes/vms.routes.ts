import { Router, type Request } from 'express';
import type { IdempotentRequest } from '../../vms/idempotency';
import type { VmService } from '../../vms/vm.service';
import { idempotencyKeySchema, listVmsQuerySchema, spawnVmSchema, vmIdSchema } from '../../vms/vm.schemas';
import { actingTenant } from '../acting-tenant';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';

function vmIdParam(value: unknown): string {
  const parsed = vmIdSchema.safeParse(value);
  if (!parsed.success) throw problems.vmNotFound();
  return parsed.data;
}

/** The Idempotency-Key of the request, with its method and path: the same key on another request is a reuse. */
function idempotencyOf(req: Request): IdempotentRequest | undefined {
  const raw = req.get('idempotency-key');
  if (raw === undefined) return undefined;
  return { key: parseOrThrow(idempotencyKeySchema, raw, 'Idempotency-Key header'), operation: `${req.method} ${req.baseUrl}${req.path}` };
}

/** The tenant a VM request acts in: always the caller's own; the platform admin may read a tenant's VMs by naming it in `?tenant_id=`. */
function vmTenant(req: Request, scope: 'vm:read' | 'vm:write'): string {
  return actingTenant(req, { scope, admin: 'reads-of-named', named: req.query.tenant_id, otherTenantNamed: 'ignored' });
}

export function vmRoutes(vms: VmService): Router {
  const router = Router();

  router.post('/v1/vms', async (req, res) => {
    const tenantId = vmTenant(req, 'vm:write');
    const idempotency = idempotencyOf(req);
    const input = parseOrThrow(spawnVmSchema, req.body);
    const { result, replayed } = await vms.spawn(tenantId, input, req.context, idempotency);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).json(result);
  });

  router.get('/v1/vms', async (req, res) => {
    const tenantId = vmTenant(req, 'vm:read');
    const query = parseOrThrow(listVmsQuerySchema, req.query, 'query');
    const page = await vms.list(tenantId, query);
    if (!page) throw problems.invalid('Invalid query: cursor: is not a cursor from this API', [{ field: 'cursor', message: 'invalid cursor' }]);
    res.json(page);
  });

  router.get('/v1/vms/:vm_id', async (req, res) => {
    res.json(await vms.get(vmTenant(req, 'vm:read'), vmIdParam(req.params.vm_id)));
  });

  router.delete('/v1/vms/:vm_id', async (req, res) => {
    const tenantId = vmTenant(req, 'vm:write');
    const vmId = vmIdParam(req.params.vm_id);
    const { result, replayed } = await vms.destroy(tenantId, vmId, req.context, idempotencyOf(req));
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).json(result);
  });

  return router;
}
