import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Kysely } from 'kysely';
import { generateToken, hashToken, newTokenId } from '../../auth/token-format';
import type { ActiveTokenCache } from '../../auth/active-token-cache';
import { findTenantToken, insertToken, isInSubtreeOf, isTokenUsable, listTenantTokens, lockTenantTokens, revokeTokenTree, toTokenRecord } from '../../auth/token.repository';
import { issueTokenSchema, tokenIdSchema } from '../../auth/token.schemas';
import type { Database } from '../../db/tables';
import { appendAuditEvent } from '../../ledger/ledger.repository';
import { scopeCovers, type Scope } from '../../shared/scopes';
import { findTenant } from '../../tenants/tenant.repository';
import { pageQuerySchema } from '../../tenants/tenant.schemas';
import { isPlatformAdmin } from '../../auth/caller';
import { requireTenantAccess } from '../access';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';
import { tenantIdParam } from './tenants.routes';

export interface TokenRoutesDeps {
  db: Kysely<Database>;
  now: () => Date;
  /** Cleared after a revocation, so this process refuses the revoked tokens at once. */
  tokenCache?: ActiveTokenCache;
}

export function tokenRoutes({ db, now, tokenCache }: TokenRoutesDeps): Router {
  const router = Router();

  router.post('/v1/tenants/:tenant_id/tokens', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    const caller = requireTenantAccess(req, tenantId, 'service:tenant-admin');
    const input = parseOrThrow(issueTokenSchema, req.body);
    const scope = input.scope as Scope;
    const at = now();
    const expiresAt = new Date(at.getTime() + input.expires_in_seconds * 1000);
    const issuedByTenant = !isPlatformAdmin(caller);
    if (issuedByTenant && !scopeCovers(caller.scope, scope)) {
      throw problems.tokenExceedsIssuer(`A ${caller.scope} token cannot issue a ${scope} token.`);
    }
    if (issuedByTenant && caller.expires_at && expiresAt > caller.expires_at) {
      throw problems.tokenExceedsIssuer(`The token would outlive the issuing token, which expires at ${caller.expires_at.toISOString()}.`);
    }
    // A stolen key-bound token must not mint an unbound one; its sub-tokens bind to their own subject_pubkey.
    const issuerBound = caller.key_binding === 'required';
    if (issuerBound && input.key_binding === 'none') {
      throw problems.tokenExceedsIssuer('A key-bound token can issue only key-bound tokens (key_binding "required").');
    }
    const keyBinding = input.key_binding ?? (issuerBound ? 'required' : 'none');
    const secret = generateToken();
    const row = await db.transaction().execute(async (trx) => {
      if (!(await lockTenantTokens(trx, tenantId))) throw problems.tenantNotFound();
      // Authentication saw the issuer usable, but a revocation may have committed since: re-check
      // under the lock revocation takes, so no child is ever born under a revoked token.
      if (issuedByTenant && !(await isTokenUsable(trx, caller.token_id, at))) throw problems.invalidToken();
      const inserted = await insertToken(trx, {
        token_id: newTokenId(),
        tenant_id: tenantId,
        scope,
        subject_pubkey: input.subject_pubkey,
        key_binding: keyBinding,
        token_hash: hashToken(secret),
        // Platform-admin issued tokens are the roots of a tenant's tree; rotating the admin token must not revoke them.
        parent_token_id: issuedByTenant ? caller.token_id : null,
        created_at: at,
        expires_at: expiresAt,
      });
      await appendAuditEvent(trx, {
        event_id: randomUUID(),
        event_type: 'TOKEN_ISSUED',
        tenant_id: tenantId,
        occurred_at: at,
        context: req.context,
        details: { token_id: inserted.token_id, scope, expires_at: expiresAt.toISOString(), parent_token_id: inserted.parent_token_id, subject_pubkey: input.subject_pubkey, key_binding: keyBinding },
      });
      return inserted;
    });
    res.status(201).json({ token: secret, ...toTokenRecord(row) });
  });

  router.get('/v1/tenants/:tenant_id/tokens', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    requireTenantAccess(req, tenantId, 'service:tenant-admin');
    const page = parseOrThrow(pageQuerySchema, req.query, 'query');
    if (!(await findTenant(db, tenantId))) throw problems.tenantNotFound();
    const rows = await listTenantTokens(db, tenantId, page.limit + 1, page.cursor);
    const items = rows.slice(0, page.limit).map(toTokenRecord);
    res.json({ items, next_cursor: rows.length > page.limit ? items[items.length - 1]!.token_id : null });
  });

  router.delete('/v1/tenants/:tenant_id/tokens/:token_id', async (req, res) => {
    const tenantId = tenantIdParam(req.params.tenant_id);
    const caller = requireTenantAccess(req, tenantId, 'service:tenant-admin');
    const tokenId = tokenIdSchema.safeParse(req.params.token_id);
    if (!tokenId.success) throw problems.tokenNotFound();
    const at = now();
    const revoked = await db.transaction().execute(async (trx) => {
      if (!(await lockTenantTokens(trx, tenantId))) throw problems.tenantNotFound();
      if (!(await findTenantToken(trx, tenantId, tokenId.data))) throw problems.tokenNotFound();
      // A tenant token may revoke itself and what was issued under it, never its issuer or a sibling.
      if (!isPlatformAdmin(caller) && !(await isInSubtreeOf(trx, tokenId.data, caller.token_id))) throw problems.tokenOutsideSubtree();
      const ids = await revokeTokenTree(trx, tokenId.data, at);
      if (ids.length > 0) {
        await appendAuditEvent(trx, {
          event_id: randomUUID(),
          event_type: 'TOKEN_REVOKED',
          tenant_id: tenantId,
          occurred_at: at,
          context: req.context,
          details: { token_id: tokenId.data, revoked_token_ids: ids },
        });
      }
      return ids;
    });
    tokenCache?.clear();
    res.json({ token_id: tokenId.data, revoked_token_ids: revoked });
  });

  return router;
}
