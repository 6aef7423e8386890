import { Router } from 'express';
import type { TokenService } from '../../auth/token.service';
import { issueTokenSchema, tokenIdSchema } from '../../auth/token.schemas';
import { pageQuerySchema } from '../../tenants/tenant.schemas';
import { requireTenantAccess } from '../access';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';
import { tenantIdParam } from './tenants.routes';

function tokenIdParam(value: unknown): string {
  const parsed = tokenIdSchema.safeParse(value);
  // A malformed id names no token: answer like any unknown token.
  if (!parsed.success) throw problems.tokenNotFound();
  return parsed.data;
}

export function tokenRoutes(tokens: TokenService): Router {
  const router = Router();

  router.post('/v1/tenants/:tenant_id/tokens', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    const caller = requireTenantAccess(req, tenantId, 'service:tenant-admin');
    const input = parseOrThrow(issueTokenSchema, req.body);
    res.status(201).json(await tokens.issue(tenantId, caller, input, req.context));
  });

  router.get('/v1/tenants/:tenant_id/tokens', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    requireTenantAccess(req, tenantId, 'service:tenant-admin');
    const page = parseOrThrow(pageQuerySchema, req.query, 'query');
    res.json(await tokens.list(tenantId, page.limit, page.cursor));
  });

  router.delete('/v1/tenants/:tenant_id/tokens/:token_id', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    const caller = requireTenantAccess(req, tenantId, 'service:tenant-admin');
    res.json(await tokens.revoke(tenantId, tokenIdParam(req.params.token_id), caller, req.context));
  });

  return router;
}
