import type { Request, RequestHandler } from 'express';
import type { Kysely } from 'kysely';
import type { ActiveTokenCache } from '../../auth/active-token-cache';
import type { AuthFailureLimiter } from '../../auth/auth-failure-limiter';
import { findActiveTokenByHash } from '../../auth/token.repository';
import { hashesEqual, hashToken, isWellFormedToken } from '../../auth/token-format';
import type { Database } from '../../db/tables';
import { isScope } from '../../shared/scopes';
import { refusalOfKeyBoundRequest, type RequestSignatureSettings } from '../key-bound-request';
import { ApiError, problems } from '../problem';
import '../request-types';

const BEARER = /^Bearer ([\x21-\x7e]+)$/i;

function clientAddress(req: Request): string {
  return req.context.source_ip ?? 'unknown';
}

export const DEFAULT_REQUEST_SIGNATURES: RequestSignatureSettings = Object.freeze({ maxAgeSeconds: 300 });

/**
 * Resolves the bearer token to a caller, or answers 401. Every failure of the token itself looks the
 * same to the client; a key-bound token's request that is not properly signed gets a 401 whose code
 * says why (the token is genuine then, so nothing is given away). Only a string in the token format
 * (prefix, length, CRC32) reaches the database; an address whose failures used up its budget gets
 * 429 before anything else is looked at. A token that authenticated less than the cache's TTL ago is
 * not looked up again (its signature, when bound, is checked on every request).
 */
export interface AuthenticationOptions {
  db: Kysely<Database>;
  now?: () => Date;
  failures?: AuthFailureLimiter;
  signatures?: RequestSignatureSettings;
  cache?: ActiveTokenCache;
}

export function authenticate({ db, now = () => new Date(), failures, signatures = DEFAULT_REQUEST_SIGNATURES, cache }: AuthenticationOptions): RequestHandler {
  return async (req, _res, next) => {
    const address = clientAddress(req);
    const blockedFor = failures ? await failures.blockedFor(address) : 0;
    if (blockedFor > 0) throw problems.tooManyFailedAuthentications(blockedFor);
    const refuse = async (problem: ApiError): Promise<never> => {
      await failures?.recordFailure(address);
      throw problem;
    };
    const header = req.get('authorization');
    if (!header) return refuse(problems.unauthenticated());
    const token = BEARER.exec(header.trim())?.[1];
    if (!token || !isWellFormedToken(token)) return refuse(problems.invalidToken());
    const tokenHash = hashToken(token);
    const at = now();
    const cached = cache?.get(tokenHash, at);
    const found = cached ?? (await findActiveTokenByHash(db, tokenHash, at));
    if (!found || !hashesEqual(found.token_hash, tokenHash) || !isScope(found.scope)) return refuse(problems.invalidToken());
    // Only a fresh lookup starts a lifetime: renewing it on every hit would keep a busy revoked token alive.
    if (!cached) cache?.set(tokenHash, found);
    if (found.key_binding === 'required') {
      // The schema guarantees a bound token has a key; a row without one can never be used.
      if (!found.subject_pubkey) return refuse(problems.invalidToken());
      const refusal = await refusalOfKeyBoundRequest(db, req, found.subject_pubkey, signatures, at);
      if (refusal) return refuse(refusal);
    }
    req.caller = {
      token_id: found.token_id,
      tenant_id: found.tenant_id,
      scope: found.scope,
      expires_at: found.expires_at,
      rate_limit_rpm: found.api_rate_limit_rpm,
      key_binding: found.key_binding,
    };
    req.context.actor_token_id = found.token_id;
    req.context.actor_scope = found.scope;
    next();
  };
}
