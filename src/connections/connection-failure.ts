import { errorCauses, rootCause } from '../shared/error-causes';

/**
 * OpenSSL's certificate verification results as Node reports them (error.code), and Node's own
 * name check. A connection that fails with one of these will fail the same way on every retry.
 */
const CERTIFICATE_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A failed certificate check of the server anywhere in the error's chain, with OpenSSL's words. */
export function certificateVerifyFailure(error: unknown): string | null {
  for (const link of errorCauses(error)) {
    const code = codeOf(link);
    if (code && CERTIFICATE_VERIFY_CODES.has(code)) return `TLS certificate verify failed: ${(link as Error).message} (${code})`;
    if (code?.startsWith('ERR_SSL_')) return `TLS handshake failed: ${(link as Error).message.split('\n')[0]} (${code})`;
  }
  return null;
}

/** Why a first connection failed, in one line for the operator: the TLS verdict when there is one, else the innermost message with its code. */
export function describeConnectionFailure(error: unknown): string {
  const tls = certificateVerifyFailure(error);
  if (tls) return tls;
  const innermost = rootCause(error);
  if (!(innermost instanceof Error) || innermost.message === '') return error instanceof Error && error.message !== '' ? error.message : String(error);
  const code = codeOf(innermost);
  return code && code !== innermost.message ? `${innermost.message} (${code})` : innermost.message;
}
