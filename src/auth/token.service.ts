import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, KeyBinding } from '../db/tables';
import { appendAuditEvent } from '../ledger/ledger-append';
import { IssuerNotUsableError, NotFoundError, TokenExceedsIssuerError, TokenOutsideSubtreeError } from '../shared/domain-errors';
import type { RequestContext } from '../shared/request-context';
import { scopeCovers, type Scope } from '../shared/scopes';
import { findTenant } from '../tenants/tenant.repository';
import { isPlatformAdmin, type Caller } from './caller';
import { generateToken, hashToken, newTokenId } from './token-format';
import {
  findTenantToken,
  insertToken,
  isInSubtreeOf,
  isTokenUsable,
  listTenantTokens,
  lockTenantTokens,
  revokeTokenTree,
  toTokenRecord,
  type TokenRecord,
} from './token.repository';
import type { IssueTokenInput } from './token.schemas';

export interface TokenServiceDeps {
  db: Kysely<Database>;
  now: () => Date;
  /** Called after a revocation, so this process refuses the revoked tokens at once (its token cache's clear). */
  tokensRevoked?: () => void;
}

/** A new token: its secret, shown once, and its record. */
export type IssuedToken = TokenRecord & { token: string };

/** What an issuer may hand on: a tenant token never more scope or lifetime than its own; a bound token never an unbound one. */
function checkIssuable(issuer: Caller, scope: Scope, expiresAt: Date, keyBinding: KeyBinding | undefined): void {
  const byTenant = !isPlatformAdmin(issuer);
  if (byTenant && !scopeCovers(issuer.scope, scope)) throw new TokenExceedsIssuerError(`A ${issuer.scope} token cannot issue a ${scope} token.`);
  if (byTenant && issuer.expires_at && expiresAt > issuer.expires_at) {
    throw new TokenExceedsIssuerError(`The token would outlive the issuing token, which expires at ${issuer.expires_at.toISOString()}.`);
  }
  // A stolen key-bound token must not mint an unbound one; its sub-tokens bind to their own subject_pubkey.
  if (issuer.key_binding === 'required' && keyBinding === 'none') {
    throw new TokenExceedsIssuerError('A key-bound token can issue only key-bound tokens (key_binding "required").');
  }
}

/**
 * The token protocols. Issuing and revoking take the tenant's token lock (lockTenantTokens), so a
 * revocation's subtree cannot miss a child issued meanwhile and an issue cannot follow a
 * revocation of its issuer; each writes its ledger entry in the same transaction.
 */
export function createTokenService({ db, now, tokensRevoked }: TokenServiceDeps) {
  async function issue(tenantId: string, issuer: Caller, input: IssueTokenInput, context: RequestContext): Promise<IssuedToken> {
    const scope = input.scope as Scope;
    const at = now();
    const expiresAt = new Date(at.getTime() + input.expires_in_seconds * 1000);
    checkIssuable(issuer, scope, expiresAt, input.key_binding);
    const issuedByTenant = !isPlatformAdmin(issuer);
    const keyBinding = input.key_binding ?? (issuer.key_binding === 'required' ? 'required' : 'none');
    const secret = generateToken();
    const row = await db.transaction().execute(async (trx) => {
      if (!(await lockTenantTokens(trx, tenantId))) throw new NotFoundError('tenant');
      // Authentication saw the issuer usable, but a revocation may have committed since: re-check
      // under the lock revocation takes, so no child is ever born under a revoked token.
      if (issuedByTenant && !(await isTokenUsable(trx, issuer.token_id, at))) throw new IssuerNotUsableError();
      const inserted = await insertToken(trx, {
        token_id: newTokenId(),
        tenant_id: tenantId,
        scope,
        subject_pubkey: input.subject_pubkey,
        key_binding: keyBinding,
        token_hash: hashToken(secret),
        // Platform-admin issued tokens are the roots of a tenant's tree; rotating the admin token must not revoke them.
        parent_token_id: issuedByTenant ? issuer.token_id : null,
        created_at: at,
        expires_at: expiresAt,
      });
      await appendAuditEvent(trx, {
        event_id: randomUUID(),
        event_type: 'TOKEN_ISSUED',
        tenant_id: tenantId,
        occurred_at: at,
        context,
        details: {
          token_id: inserted.token_id,
          scope,
          expires_at: expiresAt.toISOString(),
          parent_token_id: inserted.parent_token_id,
          subject_pubkey: input.subject_pubkey,
          key_binding: keyBinding,
        },
      });
      return inserted;
    });
    return { token: secret, ...toTokenRecord(row) };
  }

  async function list(tenantId: string, limit: number, after: string | undefined): Promise<{ items: TokenRecord[]; next_cursor: string | null }> {
    if (!(await findTenant(db, tenantId))) throw new NotFoundError('tenant');
    const rows = await listTenantTokens(db, tenantId, limit + 1, after);
    const items = rows.slice(0, limit).map(toTokenRecord);
    return { items, next_cursor: rows.length > limit ? items[items.length - 1]!.token_id : null };
  }

  /** Revokes the token and every token issued under it; a tenant token may revoke only its own subtree. */
  async function revoke(tenantId: string, tokenId: string, by: Caller, context: RequestContext): Promise<{ token_id: string; revoked_token_ids: string[] }> {
    const at = now();
    const revoked = await db.transaction().execute(async (trx) => {
      if (!(await lockTenantTokens(trx, tenantId))) throw new NotFoundError('tenant');
      if (!(await findTenantToken(trx, tenantId, tokenId))) throw new NotFoundError('token');
      if (!isPlatformAdmin(by) && !(await isInSubtreeOf(trx, tokenId, by.token_id))) throw new TokenOutsideSubtreeError();
      const ids = await revokeTokenTree(trx, tokenId, at);
      if (ids.length > 0) {
        await appendAuditEvent(trx, {
          event_id: randomUUID(),
          event_type: 'TOKEN_REVOKED',
          tenant_id: tenantId,
          occurred_at: at,
          context,
          details: { token_id: tokenId, revoked_token_ids: ids },
        });
      }
      return ids;
    });
    tokensRevoked?.();
    return { token_id: tokenId, revoked_token_ids: revoked };
  }

  return { issue, list, revoke };
}

export type TokenService = ReturnType<typeof createTokenService>;
