import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { canonicalJson } from '../ledger/ledger-hash';
import { IdempotencyKeyInFlightError, IdempotencyKeyReusedError } from '../shared/domain-errors';
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey } from './idempotency.repository';

/** An Idempotency-Key, with what the request that sent it was, to tell a retry from a reuse. */
export interface IdempotentRequest {
  key: string;
  /** The operation and its target, as the request line named them (e.g. "DELETE /v1/vms/<id>"). */
  operation: string;
}

export interface Outcome<T> {
  result: T;
  /** True when `result` is the stored answer of an earlier request with the same key. */
  replayed: boolean;
}

/**
 * The table's response_status of a completed request: every idempotent operation is accepted work
 * (answered 202), and rows stored before this module existed hold the same.
 */
const ACCEPTED = 202;

/**
 * Runs `work` at most once per (tenant, Idempotency-Key): a repeat with the same request gets the
 * stored result, a repeat with another request IdempotencyKeyReusedError, a repeat while the first
 * runs IdempotencyKeyInFlightError. Only results are stored; after a refusal or an error the key is
 * free for a retry.
 *
 * "The same request" is the operation and `input`: what the caller read from the request after
 * validating it (null when it reads none). Never the raw body: a DELETE's ignored body may be
 * anything, e.g. 30 000 nested arrays that overflow canonicalJson's recursion (a 500).
 */
export async function runOnce<T>(
  deps: { db: Kysely<Database>; now: () => Date },
  tenantId: string,
  request: IdempotentRequest | undefined,
  input: unknown,
  work: () => Promise<T>,
): Promise<Outcome<T>> {
  if (request === undefined) return { result: await work(), replayed: false };
  const { db, now } = deps;
  const fingerprint = createHash('sha256')
    .update(`${request.operation}\n${canonicalJson(input ?? null)}`)
    .digest('hex');
  const claim = await claimIdempotencyKey(db, tenantId, request.key, fingerprint, now());
  if (!claim.claimed) {
    const { existing } = claim;
    if (existing.request_fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
    if (existing.state === 'in_flight' || existing.response_status === null) throw new IdempotencyKeyInFlightError();
    return { result: existing.response_body as T, replayed: true };
  }
  try {
    const result = await work();
    await completeIdempotencyKey(db, tenantId, request.key, ACCEPTED, result);
    return { result, replayed: false };
  } catch (error) {
    await releaseIdempotencyKey(db, tenantId, request.key).catch(() => undefined);
    throw error;
  }
}
