import type { InFlightLimitDetails, QuotaExceededDetails } from '../shared/tenant-workflow.messages';

/** Stable, machine-readable error codes of the HTTP API (the `code` member of every problem). */
export type ProblemCode =
  | 'invalid_request'
  | 'malformed_json'
  | 'unsupported_media_type'
  | 'payload_too_large'
  | 'unauthenticated'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'token_exceeds_issuer'
  | 'token_outside_subtree'
  | 'not_found'
  | 'tenant_not_found'
  | 'token_not_found'
  | 'vm_not_found'
  | 'tenant_exists'
  | 'tenant_has_vms'
  | 'quota_exceeded'
  | 'in_flight_limit'
  | 'rate_limited'
  | 'too_many_failed_authentications'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_flight'
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
  readonly status: number;
  readonly code: ProblemCode;
  readonly title: string;
  readonly detail?: string;
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor({ status, code, title, detail, extensions = {}, headers = {} }: Problem) {
    super(detail ?? title);
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.extensions = extensions;
    this.headers = headers;
  }
}

const retryAfter = (seconds: number) => ({ 'Retry-After': String(seconds) });

/** The one factory per problem code; the only place an ApiError is built. */
export const problems = {
  invalid(detail: string, errors: FieldError[] = [], status = 400): ApiError {
    return new ApiError({ status, code: 'invalid_request', title: 'Invalid request', detail, extensions: errors.length ? { errors } : {} });
  },
  malformedJson(): ApiError {
    return new ApiError({ status: 400, code: 'malformed_json', title: 'Malformed JSON', detail: 'The request body is not valid JSON.' });
  },
  unsupportedMediaType(detail: string): ApiError {
    return new ApiError({ status: 415, code: 'unsupported_media_type', title: 'Unsupported media type', detail });
  },
  payloadTooLarge(): ApiError {
    return new ApiError({ status: 413, code: 'payload_too_large', title: 'Payload too large', detail: 'The request body exceeds the size limit.' });
  },
  unauthenticated(): ApiError {
    const detail = 'Send a bearer token in the Authorization header.';
    return new ApiError({ status: 401, code: 'unauthenticated', title: 'Authentication required', detail, headers: { 'WWW-Authenticate': 'Bearer realm="vm-tenant"' } });
  },
  invalidToken(): ApiError {
    const detail = 'The bearer token is unknown, expired or revoked.';
    return new ApiError({ status: 401, code: 'invalid_token', title: 'Invalid token', detail, headers: { 'WWW-Authenticate': 'Bearer realm="vm-tenant", error="invalid_token"' } });
  },
  /** Names the scope the operation needs, or says why no scope of this token would do. */
  insufficientScope(need: { scope: string } | { detail: string }): ApiError {
    const problem = { status: 403, code: 'insufficient_scope', title: 'Insufficient scope' } as const;
    if ('detail' in need) return new ApiError({ ...problem, detail: need.detail });
    return new ApiError({ ...problem, detail: `This operation needs a token with scope ${need.scope}.`, extensions: { required_scope: need.scope } });
  },
  tokenExceedsIssuer(detail: string): ApiError {
    return new ApiError({ status: 403, code: 'token_exceeds_issuer', title: 'Token exceeds issuer', detail });
  },
  tokenOutsideSubtree(): ApiError {
    const detail = 'A tenant token can revoke only itself and the tokens issued under it.';
    return new ApiError({ status: 403, code: 'token_outside_subtree', title: 'Token outside your subtree', detail });
  },
  routeNotFound(): ApiError {
    return new ApiError({ status: 404, code: 'not_found', title: 'Not found', detail: 'No such route.' });
  },
  tenantNotFound(): ApiError {
    return new ApiError({ status: 404, code: 'tenant_not_found', title: 'Tenant not found', detail: 'No such tenant.' });
  },
  tokenNotFound(): ApiError {
    return new ApiError({ status: 404, code: 'token_not_found', title: 'Token not found', detail: 'No such token in this tenant.' });
  },
  vmNotFound(): ApiError {
    return new ApiError({ status: 404, code: 'vm_not_found', title: 'VM not found', detail: 'No such VM.' });
  },
  tenantExists(tenantId: string): ApiError {
    const detail = `Tenant id ${tenantId} is taken; tenant ids are never reused.`;
    return new ApiError({ status: 409, code: 'tenant_exists', title: 'Tenant exists', detail });
  },
  tenantHasVms(): ApiError {
    return new ApiError({ status: 409, code: 'tenant_has_vms', title: 'Tenant has VMs', detail: 'Destroy every VM of the tenant before deleting it.' });
  },
  quotaExceeded(details: QuotaExceededDetails | undefined): ApiError {
    const detail = details
      ? `The spawn would exceed the tenant's ${details.limit} quota (limit ${details.limit_value}, in use ${details.in_use}, requested ${details.requested}).`
      : 'The spawn would exceed the tenant quota.';
    return new ApiError({ status: 429, code: 'quota_exceeded', title: 'Quota exceeded', detail, extensions: { ...details } });
  },
  inFlightLimit(details: InFlightLimitDetails | undefined): ApiError {
    const detail = `The tenant has ${details?.in_flight ?? 'too many'} VMs being spawned or destroyed (limit ${details?.limit ?? 'reached'}); retry when some have settled.`;
    return new ApiError({ status: 429, code: 'in_flight_limit', title: 'Too many VMs in flight', detail, extensions: { ...details }, headers: retryAfter(5) });
  },
  rateLimited(limit: number, retryAfterSeconds: number): ApiError {
    const detail = `The tenant's API rate limit of ${limit} requests per minute is used up; retry in ${retryAfterSeconds} s.`;
    const extensions = { limit, retry_after_seconds: retryAfterSeconds };
    return new ApiError({ status: 429, code: 'rate_limited', title: 'Rate limited', detail, extensions, headers: retryAfter(retryAfterSeconds) });
  },
  tooManyFailedAuthentications(retryAfterSeconds: number): ApiError {
    return new ApiError({
      status: 429,
      code: 'too_many_failed_authentications',
      title: 'Too many failed authentications',
      detail: `Too many requests from this address failed authentication; retry in ${retryAfterSeconds} s.`,
      extensions: { retry_after_seconds: retryAfterSeconds },
      headers: retryAfter(retryAfterSeconds),
    });
  },
  idempotencyKeyReused(): ApiError {
    const detail = 'This Idempotency-Key was used for a different request.';
    return new ApiError({ status: 422, code: 'idempotency_key_reused', title: 'Idempotency key reused', detail });
  },
  idempotencyKeyInFlight(): ApiError {
    const detail = 'A request with this Idempotency-Key is still being processed; retry shortly.';
    return new ApiError({ status: 409, code: 'idempotency_key_in_flight', title: 'Request in progress', detail, headers: retryAfter(1) });
  },
  dependencyUnavailable(detail: string, options: { retryAfterSeconds: number; title?: string; extensions?: Record<string, unknown> }): ApiError {
    const { retryAfterSeconds, title = 'Dependency unavailable', extensions } = options;
    return new ApiError({ status: 503, code: 'dependency_unavailable', title, detail, extensions, headers: retryAfter(retryAfterSeconds) });
  },
  internalError(): ApiError {
    return new ApiError({ status: 500, code: 'internal_error', title: 'Internal error', detail: 'The request could not be completed.' });
  },
};
