import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Bearer tokens look like `vmt_<30 random base62 chars><6 char base62 CRC32>`, the shape GitHub
 * uses: the prefix lets secret scanners find leaked tokens, the checksum lets them (and us) reject
 * typos and random strings without a database round trip. Only the SHA-256 of a token is stored.
 */
export const TOKEN_PREFIX = 'vmt_';
const BODY_LENGTH = 30;
const CHECKSUM_LENGTH = 6;
const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const TOKEN_PATTERN = new RegExp(`^${TOKEN_PREFIX}[0-9A-Za-z]{${BODY_LENGTH + CHECKSUM_LENGTH}}$`);

function base62(bytes: Buffer, length: number): string {
  let out = '';
  // Rejection sampling keeps every character uniformly distributed.
  let pool = bytes;
  let i = 0;
  while (out.length < length) {
    if (i >= pool.length) {
      pool = randomBytes(length * 2);
      i = 0;
    }
    const byte = pool[i++]!;
    if (byte < 248) out += ALPHABET[byte % 62];
  }
  return out;
}

function checksumOf(body: string): string {
  let value = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

export function generateToken(): string {
  const body = base62(randomBytes(BODY_LENGTH * 2), BODY_LENGTH);
  return `${TOKEN_PREFIX}${body}${checksumOf(body)}`;
}

/** True when the string has the token shape and its checksum matches; says nothing of validity. */
export function isWellFormedToken(token: string): boolean {
  if (!TOKEN_PATTERN.test(token)) return false;
  const body = token.slice(TOKEN_PREFIX.length, TOKEN_PREFIX.length + BODY_LENGTH);
  return checksumOf(body) === token.slice(TOKEN_PREFIX.length + BODY_LENGTH);
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** Constant-time comparison of two hex SHA-256 hashes; anything that is not one never matches. */
export function hashesEqual(a: string, b: string): boolean {
  // Buffer.from(..., 'hex') drops what is not hex, so two garbage strings would otherwise compare equal.
  if (!SHA256_HEX.test(a) || !SHA256_HEX.test(b)) return false;
  const left = Buffer.from(a, 'hex');
  const right = Buffer.from(b, 'hex');
  return left.length === right.length && timingSafeEqual(left, right);
}

export function newTokenId(): string {
  return `tok_${base62(randomBytes(40), 20)}`;
}
