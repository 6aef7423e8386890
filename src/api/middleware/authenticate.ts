import type { RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import { findActiveTokenByHash } from '../../auth/token.repository';
import { hashesEqual, hashToken, isWellFormedToken, TOKEN_PREFIX } from '../../auth/token-format';
import type { Database } from '../../db/tables';
import { isScope } from '../../shared/scopes';
import { problems } from '../problem';
import '../request-types';

const MAX_TOKEN_LENGTH = 512;

/** Resolves the bearer token to a caller, or answers 401. Every failure looks the same to the client. */
export function authenticate(db: Kysely<Database>, now: () => Date = () => new Date()): RequestHandler {
  return async (req, _res, next) => {
    const header = req.get('authorization');
    if (!header) throw problems.unauthenticated();
    const match = /^Bearer ([\x21-\x7e]+)$/i.exec(header.trim());
    const token = match?.[1];
    if (!token || token.length > MAX_TOKEN_LENGTH) throw problems.invalidToken();
    // A vmt_ token with a wrong checksum cannot exist; skip the database for it.
    if (token.startsWith(TOKEN_PREFIX) && !isWellFormedToken(token)) throw problems.invalidToken();
    const tokenHash = hashToken(token);
    const found = await findActiveTokenByHash(db, tokenHash, now());
    if (!found || !hashesEqual(found.token_hash, tokenHash) || !isScope(found.scope)) throw problems.invalidToken();
    req.caller = { token_id: found.token_id, tenant_id: found.tenant_id, scope: found.scope, expires_at: found.expires_at, rate_limit_rpm: found.api_rate_limit_rpm };
    req.context.actor_token_id = found.token_id;
    req.context.actor_scope = found.scope;
    next();
  };
}
