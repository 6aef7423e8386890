import { createHash, timingSafeEqual } from 'node:crypto';
import { parseDictionary } from 'structured-headers';

/** RFC 9530 digest algorithms the API checks; a client sends at least one of them. */
const ALGORITHMS = { 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;
type DigestAlgorithm = keyof typeof ALGORITHMS;

/** The Content-Digest field (RFC 9530) of a body: `sha-256=:<base64>:`. */
export function contentDigestHeader(body: Uint8Array): string {
  return `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
}

export type DigestCheck = 'match' | 'missing' | 'malformed' | 'unsupported' | 'mismatch';

/**
 * Checks a Content-Digest field against the body the API received. Every digest of an algorithm the
 * API knows must match, and at least one must be there; digests of other algorithms are ignored.
 */
export function checkContentDigest(header: string | undefined, body: Uint8Array): DigestCheck {
  if (header === undefined || header.trim() === '') return 'missing';
  let members;
  try {
    members = parseDictionary(header);
  } catch {
    return 'malformed';
  }
  let checked = 0;
  for (const [name, member] of members) {
    if (!(name in ALGORITHMS)) continue;
    const value = member[0];
    if (!(value instanceof ArrayBuffer)) return 'malformed';
    const expected = createHash(ALGORITHMS[name as DigestAlgorithm])
      .update(body)
      .digest();
    const given = Buffer.from(value);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'mismatch';
    checked += 1;
  }
  return checked > 0 ? 'match' : 'unsupported';
}
