import { ACCEPT_SIGNATURE } from '../auth/request-signature-profile';

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
  | 'tenant_exists'
  | 'tenant_has_vms'
  | 'tenant_closed'
  | 'quota_exceeded'
  | 'in_flight_limit'
  | 'rate_limited'
  | 'too_many_failed_authentications'
  | 'idempotency_key_reused'
  | 'idempotency_key_in_flight'
  | 'method_not_allowed'
  | 'dependency_unavailable'
  | 'internal_error';

export interface FieldError {
  field: string;
  message: string;
}

/** An error the API answers as an RFC 9457 problem; anything else becomes a 500 with no detail. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ProblemCode,
    readonly title: string,
    readonly detail?: string,
    readonly extensions: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? title);
  }
}

/** A 401 for a key-bound token's request: says what to sign (RFC 9421 Accept-Signature). */
function signatureProblem(code: ProblemCode, title: string, detail: string): ApiError {
  return new ApiError(401, code, title, detail, {}, {
    'WWW-Authenticate': `Bearer realm="vm-tenant", error="invalid_token", error_description="${code}"`,
    'Accept-Signature': ACCEPT_SIGNATURE,
  });
}

export const problems = {
  invalid(detail: string, errors: FieldError[] = []): ApiError {
    return new ApiError(400, 'invalid_request', 'Invalid request', detail, errors.length ? { errors } : {});
  },
  unauthenticated(): ApiError {
    return new ApiError(401, 'unauthenticated', 'Authentication required', 'Send a bearer token in the Authorization header.', {}, {
      'WWW-Authenticate': 'Bearer realm="vm-tenant"',
    });
  },
  invalidToken(): ApiError {
    return new ApiError(401, 'invalid_token', 'Invalid token', 'The bearer token is unknown, expired or revoked.', {}, {
      'WWW-Authenticate': 'Bearer realm="vm-tenant", error="invalid_token"',
    });
  },
  signatureRequired(detail: string): ApiError {
    return signatureProblem('signature_required', 'Signature required', `This token is bound to a key: sign the request with it (RFC 9421). ${detail}`);
  },
  signatureMalformed(detail: string): ApiError {
    return signatureProblem('signature_malformed', 'Malformed signature', detail);
  },
  signatureKeyMismatch(detail: string): ApiError {
    return signatureProblem('signature_key_mismatch', 'Signed with another key', detail);
  },
  signatureInvalid(detail: string): ApiError {
    return signatureProblem('signature_invalid', 'Invalid signature', detail);
  },
  signatureExpired(detail: string): ApiError {
    return signatureProblem('signature_expired', 'Signature expired', detail);
  },
  signatureReplayed(): ApiError {
    return signatureProblem('signature_replayed', 'Signature replayed', 'This signature was accepted before; sign every request anew (a fresh nonce and created time).');
  },
  contentDigestMismatch(detail: string): ApiError {
    return signatureProblem('content_digest_mismatch', 'Content digest mismatch', detail);
  },
  insufficientScope(needed: string): ApiError {
    return new ApiError(403, 'insufficient_scope', 'Insufficient scope', `This operation needs a token with scope ${needed}.`, {
      required_scope: needed,
    });
  },
  tenantNotFound(): ApiError {
    return new ApiError(404, 'tenant_not_found', 'Tenant not found', 'No such tenant.');
  },
  vmNotFound(): ApiError {
    return new ApiError(404, 'vm_not_found', 'VM not found', 'No such VM.');
  },
  tenantHasVms(): ApiError {
    return new ApiError(409, 'tenant_has_vms', 'Tenant has VMs', 'Destroy every VM of the tenant before deleting it.');
  },
};
