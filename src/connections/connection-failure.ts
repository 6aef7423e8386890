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

/** The error itself, then its causes (nats.js: chainedError) and the first of an AggregateError. */
function* chain(error: unknown): Generator<unknown> {
  let current = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    yield current;
    const { cause, chainedError } = current as { cause?: unknown; chainedError?: unknown };
    current = current instanceof AggregateError && current.errors.length > 0 ? current.errors[0] : (chainedError ?? cause);
  }
}

/** A failed certificate check of the server anywhere in the error's chain, with OpenSSL's words. */
export function certificateVerifyFailure(error: unknown): string | null {
  for (const link of chain(error)) {
    const code = codeOf(link);
    if (code && CERTIFICATE_VERIFY_CODES.has(code)) return `TLS certificate verify failed: ${(link as Error).message} (${code})`;
    if (code?.startsWith('ERR_SSL_')) return `TLS handshake failed: ${(link as Error).message.split('\n')[0]} (${code})`;
  }
  return null;
}

/** Why a first connection failed, in one line for the operator: the TLS verdict when there is one, else the deepest message with its code. */
export function describeConnectionFailure(error: unknown): string {
  const tls = certificateVerifyFailure(error);
  if (tls) return tls;
  const links = [...chain(error)].filter((link): link is Error => link instanceof Error && link.message !== '');
  const innermost = links.at(-1);
  if (!innermost) return String(error);
  const code = codeOf(innermost);
  return code && code !== innermost.message ? `${innermost.message} (${code})` : innermost.message;
}
