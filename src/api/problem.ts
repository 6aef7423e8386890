import { ACCEPT_SIGNATURE } from '../auth/request-signature-profile';
import type { InFlightLimitDetails, QuotaExceededDetails } from '../shared/tenant-workflow.messages';

/** Stable, machine-readable error codes of the HTTP API (the `code` member of every problem). */
export type ProblemCode =
  | 'invalid_request'
  | 'malformed_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthenticated'
  | 'invalid_token'
  | 'signature_required'
  | 'signature_malformed'
  | 'signature_key_mismatch'
  | 'signature_invalid'
  | 'signature_expired'
  | 'signature_replayed'
  | 'content_digest_mismatch'
  | 'insufficient_scope'
  | 'token_exceeds_issuer'
  | 'token_outside_subtree'
  | 'not_found'
  | 'tenant_not_found'
  | 'token_not_found'
  | 'vm_not_found'
  | 'checkpoint_not_found'
  | 'tenant_exists'
  | 'tenant_has_vms'
  | 'quota_exceeded'
  | 'in_flight_limit'
  | 'rate_limited'
  | 'too_many_failed_authentications'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_flight'
  | 'not_anchored_yet'
  | 'method_not_allowed'
  | 'dependency_unavailable'
  | 'internal_error';

export interface FieldError {
  field: string;
  message: string;
}

export interface Problem {
  status: number;
  code: ProblemCode;
  title: string;
  detail?: string;
  /** Members added to the problem document after `code`. */
  extensions?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** An error the API answers as an RFC 9457 problem; anything else becomes a 500 with no detail. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  declare readonly status: number;
  declare readonly code: ProblemCode;
  declare readonly title: string;
  declare readonly detail?: string;
  declare readonly extensions: Record<string, unknown>;
  declare readonly headers: Record<string, string>;

  constructor({ extensions = {}, headers = {}, ...problem }: Problem) {
    super(problem.detail ?? problem.title);
    Object.assign(this, { ...problem, extensions, headers });
  }
}

const retryAfter = (seconds: number) => ({ 'Retry-After': String(seconds) });

/** A 401 for a key-bound token's request: says what to sign (RFC 9421 Accept-Signature). */
const signatureProblem = (code: ProblemCode, title: string, detail: string) =>
  new ApiError({
    status: 401,
    code,
    title,
    detail,
    headers: { 'WWW-Authenticate': `Bearer realm="vm-tenant", error="invalid_token", error_description="${code}"`, 'Accept-Signature': ACCEPT_SIGNATURE },
  });

/** The one factory per problem code; the only place an ApiError is built. */
export const problems = {
  invalid: (detail: string, errors: FieldError[] = [], status = 400) =>
    new ApiError({ status, code: 'invalid_request', title: 'Invalid request', detail, extensions: errors.length ? { errors } : {} }),
  malformedJson: () => new ApiError({ status: 400, code: 'malformed_json', title: 'Malformed JSON', detail: 'The request body is not valid JSON.' }),
  unsupportedMediaType: (detail: string) => new ApiError({ status: 415, code: 'unsupported_media_type', title: 'Unsupported media type', detail }),
  payloadTooLarge: () =>
    new ApiError({ status: 413, code: 'payload_too_large', title: 'Payload too large', detail: 'The request body exceeds the size limit.' }),
  unauthenticated: () =>
    new ApiError({
      status: 401,
      code: 'unauthenticated',
      title: 'Authentication required',
      detail: 'Send a bearer token in the Authorization header.',
      headers: { 'WWW-Authenticate': 'Bearer realm="vm-tenant"' },
    }),
  invalidToken: () =>
    new ApiError({
      status: 401,
      code: 'invalid_token',
      title: 'Invalid token',
      detail: 'The bearer token is unknown, expired or revoked.',
      headers: { 'WWW-Authenticate': 'Bearer realm="vm-tenant", error="invalid_token"' },
    }),
  signatureRequired: (detail: string) =>
    signatureProblem('signature_required', 'Signature required', `This token is bound to a key: sign the request with it (RFC 9421). ${detail}`),
  signatureMalformed: (detail: string) => signatureProblem('signature_malformed', 'Malformed signature', detail),
  signatureKeyMismatch: (detail: string) => signatureProblem('signature_key_mismatch', 'Signed with another key', detail),
  signatureInvalid: (detail: string) => signatureProblem('signature_invalid', 'Invalid signature', detail),
  signatureExpired: (detail: string) => signatureProblem('signature_expired', 'Signature expired', detail),
  signatureReplayed: () =>
    signatureProblem(
      'signature_replayed',
      'Signature replayed',
      'This signature was accepted before; sign every request anew (a fresh nonce and created time).',
    ),
  contentDigestMismatch: (detail: string) => signatureProblem('content_digest_mismatch', 'Content digest mismatch', detail),
  /** Names the scope the operation needs, or says why no scope of this token would do. */
  insufficientScope: (need: { scope: string } | { detail: string }) =>
    new ApiError({
      status: 403,
      code: 'insufficient_scope',
      title: 'Insufficient scope',
      ...('scope' in need ? { detail: `This operation needs a token with scope ${need.scope}.`, extensions: { required_scope: need.scope } } : need),
    }),
  tokenExceedsIssuer: (detail: string) => new ApiError({ status: 403, code: 'token_exceeds_issuer', title: 'Token exceeds issuer', detail }),
  tokenOutsideSubtree: () =>
    new ApiError({
      status: 403,
      code: 'token_outside_subtree',
      title: 'Token outside your subtree',
      detail: 'A tenant token can revoke only itself and the tokens issued under it.',
    }),
  routeNotFound: () => new ApiError({ status: 404, code: 'not_found', title: 'Not found', detail: 'No such route.' }),
  tenantNotFound: () => new ApiError({ status: 404, code: 'tenant_not_found', title: 'Tenant not found', detail: 'No such tenant.' }),
  tokenNotFound: () => new ApiError({ status: 404, code: 'token_not_found', title: 'Token not found', detail: 'No such token in this tenant.' }),
  checkpointNotFound: (checkpointId: string) =>
    new ApiError({
      status: 404,
      code: 'checkpoint_not_found',
      title: 'Checkpoint not found',
      detail: `No checkpoint of the ledger's series has id ${checkpointId} (the link hash of a checkpoint from GET /v1/audit/proof or GET /v1/audit/checkpoints).`,
    }),
  vmNotFound: () => new ApiError({ status: 404, code: 'vm_not_found', title: 'VM not found', detail: 'No such VM.' }),
  tenantExists: (tenantId: string) =>
    new ApiError({ status: 409, code: 'tenant_exists', title: 'Tenant exists', detail: `Tenant id ${tenantId} is taken; tenant ids are never reused.` }),
  tenantHasVms: () =>
    new ApiError({ status: 409, code: 'tenant_has_vms', title: 'Tenant has VMs', detail: 'Destroy every VM of the tenant before deleting it.' }),
  quotaExceeded: (details: QuotaExceededDetails | undefined) =>
    new ApiError({
      status: 429,
      code: 'quota_exceeded',
      title: 'Quota exceeded',
      detail: details
        ? `The spawn would exceed the tenant's ${details.limit} quota (limit ${details.limit_value}, in use ${details.in_use}, requested ${details.requested}).`
        : 'The spawn would exceed the tenant quota.',
      extensions: { ...details },
    }),
  inFlightLimit: (details: InFlightLimitDetails | undefined) =>
    new ApiError({
      status: 429,
      code: 'in_flight_limit',
      title: 'Too many VMs in flight',
      detail: `The tenant has ${details?.in_flight ?? 'too many'} VMs being spawned or destroyed (limit ${details?.limit ?? 'reached'}); retry when some have settled.`,
      extensions: { ...details },
      headers: retryAfter(5),
    }),
  rateLimited: (limit: number, seconds: number) =>
    new ApiError({
      status: 429,
      code: 'rate_limited',
      title: 'Rate limited',
      detail: `The tenant's API rate limit of ${limit} requests per minute is used up; retry in ${seconds} s.`,
      extensions: { limit, retry_after_seconds: seconds },
      headers: retryAfter(seconds),
    }),
  tooManyFailedAuthentications: (seconds: number) =>
    new ApiError({
      status: 429,
      code: 'too_many_failed_authentications',
      title: 'Too many failed authentications',
      detail: `Too many requests from this address failed authentication; retry in ${seconds} s.`,
      extensions: { retry_after_seconds: seconds },
      headers: retryAfter(seconds),
    }),
  methodNotAllowed: (method: string, allow: string) =>
    new ApiError({
      status: 405,
      code: 'method_not_allowed',
      title: 'Method not allowed',
      detail: `${method} is not supported here; use ${allow}.`,
      headers: { Allow: allow },
    }),
  idempotencyKeyReused: () =>
    new ApiError({
      status: 422,
      code: 'idempotency_key_reused',
      title: 'Idempotency key reused',
      detail: 'This Idempotency-Key was used for a different request.',
    }),
  idempotencyKeyInFlight: () =>
    new ApiError({
      status: 409,
      code: 'idempotency_key_in_flight',
      title: 'Request in progress',
      detail: 'A request with this Idempotency-Key is still being processed; retry shortly.',
      headers: retryAfter(1),
    }),
  /** Nothing is wrong and no dependency is down: what was asked for is not under a signed checkpoint yet. */
  notAnchoredYet: (detail: string, retryAfterSeconds: number) =>
    new ApiError({
      status: 409,
      code: 'not_anchored_yet',
      title: 'Not anchored yet',
      detail,
      extensions: { retry_after_seconds: retryAfterSeconds },
      headers: retryAfter(retryAfterSeconds),
    }),
  dependencyUnavailable: (
    detail: string,
    { retryAfterSeconds, title = 'Dependency unavailable', extensions }: { retryAfterSeconds: number; title?: string; extensions?: Record<string, unknown> },
  ) => new ApiError({ status: 503, code: 'dependency_unavailable', title, detail, extensions, headers: retryAfter(retryAfterSeconds) }),
  internalError: () => new ApiError({ status: 500, code: 'internal_error', title: 'Internal error', detail: 'The request could not be completed.' }),
};
