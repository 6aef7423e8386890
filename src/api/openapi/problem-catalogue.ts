import { z } from 'zod';
import { SCOPES } from '../../shared/scopes';
import type { ProblemCode } from '../problem';

/** Response headers a problem carries, by name; each is documented once in openapi-document.ts. */
export type ProblemHeader = 'WWW-Authenticate' | 'Retry-After' | 'Allow' | 'Accept-Signature';

export interface ProblemEntry {
  status: number;
  /** What the code means to a client; the document lists it under the status. */
  description: string;
  /** The extension members the API sends with this code (RFC 9457 §3.2), beyond the standard ones. */
  extensions?: z.ZodRawShape;
  /** Headers always sent with this code. */
  headers?: readonly ProblemHeader[];
}

const retryAfterSeconds = z.number().int().describe('Seconds to wait before retrying; also in the Retry-After header');

/**
 * Every problem the API answers, by its stable code: the status it comes with, the extension
 * members and headers it carries. The OpenAPI document is built from this table, so a new code or
 * member added here is documented on every route that lists the code.
 */
export const PROBLEM_CATALOGUE: Record<ProblemCode, ProblemEntry> = {
  invalid_request: {
    status: 400,
    description: 'the input is invalid (`errors` names each bad field), or the request could not be read',
    extensions: { errors: z.array(z.object({ field: z.string(), message: z.string() })).optional() },
  },
  malformed_json: { status: 400, description: 'the body is not valid JSON' },
  unauthenticated: { status: 401, description: 'no bearer token was sent', headers: ['WWW-Authenticate'] },
  invalid_token: { status: 401, description: 'the bearer token is unknown, expired or revoked', headers: ['WWW-Authenticate'] },
  // A key-bound token's request that is not properly signed (RFC 9421, docs/bound-tokens.md).
  signature_required: {
    status: 401,
    description: 'the token is bound to a key and the request is not signed',
    headers: ['WWW-Authenticate', 'Accept-Signature'],
  },
  signature_malformed: {
    status: 401,
    description: "the signature headers cannot be read, or do not cover what a bound token's request must sign",
    headers: ['WWW-Authenticate', 'Accept-Signature'],
  },
  signature_key_mismatch: {
    status: 401,
    description: "the request is signed with a key other than the token's",
    headers: ['WWW-Authenticate', 'Accept-Signature'],
  },
  signature_invalid: { status: 401, description: 'the signature does not verify', headers: ['WWW-Authenticate', 'Accept-Signature'] },
  signature_expired: { status: 401, description: 'the signature is too old, or created in the future', headers: ['WWW-Authenticate', 'Accept-Signature'] },
  signature_replayed: { status: 401, description: 'this signature was accepted before', headers: ['WWW-Authenticate', 'Accept-Signature'] },
  content_digest_mismatch: { status: 401, description: 'the Content-Digest does not match the body', headers: ['WWW-Authenticate', 'Accept-Signature'] },
  insufficient_scope: {
    status: 403,
    description: 'the token lacks the scope the operation needs (`required_scope`), or a VM write was made with the platform-admin token',
    extensions: { required_scope: z.enum(SCOPES).optional().describe('The scope the operation needs') },
  },
  token_exceeds_issuer: { status: 403, description: 'the requested token would be wider or longer-lived than the issuing token' },
  token_outside_subtree: { status: 403, description: 'a tenant token revokes only itself and the tokens issued under it' },
  not_found: { status: 404, description: 'no such route' },
  tenant_not_found: { status: 404, description: 'no such tenant, or it belongs to another tenant (answered alike)' },
  token_not_found: { status: 404, description: 'no such token in this tenant' },
  checkpoint_not_found: { status: 404, description: "no checkpoint of the ledger's series has this id (its link hash)" },
  vm_not_found: { status: 404, description: "no such VM in the caller's tenant" },
  method_not_allowed: { status: 405, description: 'the path exists, the method does not (the Allow header lists the methods)', headers: ['Allow'] },
  tenant_exists: { status: 409, description: 'the tenant id was used before (ids are never reused)' },
  tenant_has_vms: { status: 409, description: 'the tenant still has VMs' },
  idempotency_key_in_flight: { status: 409, description: 'a request with this Idempotency-Key is still in flight', headers: ['Retry-After'] },
  not_anchored_yet: {
    status: 409,
    description:
      "no signed ledger checkpoint covers the tenant's entries yet (none was signed yet, or its newest entries came after the newest one); the worker signs one within a signing period: retry after Retry-After",
    extensions: { retry_after_seconds: retryAfterSeconds },
    headers: ['Retry-After'],
  },
  payload_too_large: { status: 413, description: 'the body exceeds 64 KiB' },
  unsupported_media_type: { status: 415, description: 'the body is not UTF-8 application/json' },
  idempotency_key_reused: { status: 422, description: 'the Idempotency-Key was used for a different request' },
  quota_exceeded: {
    status: 429,
    description: "the spawn would exceed the tenant's quota (`limit` names which)",
    extensions: {
      limit: z.enum(['max_vms', 'storage_quota_gb']),
      limit_value: z.number().int(),
      in_use: z.number().int(),
      requested: z.number().int(),
    },
  },
  in_flight_limit: {
    status: 429,
    description: 'too many VMs of the tenant are being spawned or destroyed; retry when some have settled',
    extensions: { in_flight: z.number().int(), limit: z.number().int() },
    headers: ['Retry-After'],
  },
  rate_limited: {
    status: 429,
    description: "the tenant's API rate limit is used up",
    extensions: { limit: z.number().int().describe('Requests per minute'), retry_after_seconds: retryAfterSeconds },
    headers: ['Retry-After'],
  },
  too_many_failed_authentications: {
    status: 429,
    description: 'too many requests from this address failed authentication',
    extensions: { retry_after_seconds: retryAfterSeconds },
    headers: ['Retry-After'],
  },
  internal_error: { status: 500, description: 'an unexpected error (a bug); the request id finds it in the logs' },
  dependency_unavailable: {
    status: 503,
    description: 'a dependency is down or did not answer in time; retry (with the same Idempotency-Key for writes)',
    extensions: {
      dependency: z.enum(['postgres', 'temporal']).optional().describe('The dependency that did not answer'),
      quota_version: z.number().int().optional().describe('PATCH of a tenant: the stored quota version the tenant workflow has not confirmed'),
    },
    headers: ['Retry-After'],
  },
};

/** The RFC 9457 members every problem carries. */
const problemMembers = {
  type: z.string().describe('urn:vm-tenant:problem:<code>'),
  title: z.string(),
  detail: z.string().optional(),
  instance: z.string().describe('The request path'),
  request_id: z.string().describe('Also in the X-Request-Id header'),
};

/** The exact shape of one code's problem: no member the API does not send, every member it does. */
export function problemSchema(code: ProblemCode): z.ZodObject {
  const entry = PROBLEM_CATALOGUE[code];
  return z.object({ ...problemMembers, status: z.literal(entry.status), code: z.literal(code), ...entry.extensions }).meta({ title: `Problem: ${code}` });
}
