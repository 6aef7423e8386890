import { createHash } from 'node:crypto';
import type { Request } from 'express';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { canonicalJson } from '../ledger/ledger-hash';
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey } from '../vms/idempotency.repository';
import { idempotencyKeySchema } from '../vms/vm.schemas';
import { problems } from './problem';
import { parseOrThrow } from './validation';

export interface StoredResponse {
  status: number;
  body: unknown;
}

export function idempotencyKeyOf(req: Request): string | undefined {
  const raw = req.get('idempotency-key');
  if (raw === undefined) return undefined;
  return parseOrThrow(idempotencyKeySchema, raw, 'Idempotency-Key header');
}

/**
 * Runs `handler` at most once per (tenant, Idempotency-Key): a repeat with the same request gets
 * the stored answer, a repeat with another request 422, a repeat while the first runs 409. Only
 * successful answers are stored; after a refusal or an error the key is free for a retry.
 *
 * "The same request" is method, path and `input`: what the route read from the body after
 * validating it (null when it reads none). Never the raw body: a DELETE's ignored body may be
 * anything, e.g. 30 000 nested arrays that overflow canonicalJson's recursion (a 500).
 */
export async function runIdempotent(
  db: Kysely<Database>,
  req: Request,
  tenantId: string,
  key: string | undefined,
  now: () => Date,
  input: unknown,
  handler: () => Promise<StoredResponse>,
): Promise<StoredResponse & { replayed: boolean }> {
  if (key === undefined) return { ...(await handler()), replayed: false };
  const fingerprint = createHash('sha256')
    .update(`${req.method} ${req.baseUrl}${req.path}\n${canonicalJson(input ?? null)}`)
    .digest('hex');
  const claim = await claimIdempotencyKey(db, tenantId, key, fingerprint, now());
  if (!claim.claimed) {
    const { existing } = claim;
    if (existing.request_fingerprint !== fingerprint) {
      throw problems.idempotencyKeyReused();
    }
    if (existing.state === 'in_flight' || existing.response_status === null) {
      throw problems.idempotencyKeyInFlight();
    }
    return { status: existing.response_status, body: existing.response_body, replayed: true };
  }
  try {
    const response = await handler();
    await completeIdempotencyKey(db, tenantId, key, response.status, response.body);
    return { ...response, replayed: false };
  } catch (error) {
    await releaseIdempotencyKey(db, tenantId, key).catch(() => undefined);
    throw error;
  }
}
