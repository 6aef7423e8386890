import { createPublicKey, type KeyObject } from 'node:crypto';

/**
 * What the signature of a request made with a key-bound token is (RFC 9421), for the signer and
 * the API alike. It covers the method, the full target URI, the bearer token (so a signature
 * cannot be moved to another token of the same key) and the RFC 9530 Content-Digest of the body;
 * `created` bounds its age and `nonce` makes two identical requests in the same second differ.
 */
export const SIGNATURE_LABEL = 'vmt';
export const SIGNATURE_ALGORITHM = 'ed25519';
export const SIGNED_COMPONENTS = ['@method', '@target-uri', 'authorization', 'content-digest'] as const;
export const SIGNATURE_PARAMS = ['created', 'nonce', 'keyid', 'alg'] as const;
export const REQUIRED_SIGNATURE_PARAMS = ['created', 'nonce'] as const;

/** How far ahead of the API's clock a client's `created` may be. */
export const SIGNATURE_CLOCK_SKEW_SECONDS = 30;

/** The `Accept-Signature` field (RFC 9421 §5.1) that tells a client what to sign. */
export const ACCEPT_SIGNATURE = `${SIGNATURE_LABEL}=(${SIGNED_COMPONENTS.map((c) => `"${c}"`).join(' ')});created;nonce;alg="${SIGNATURE_ALGORITHM}"`;

/** The key id of an Ed25519 key: its raw 32 bytes in base64, the form tokens' subject_pubkey is stored in. */
export function keyIdOf(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url').toString('base64');
}

/** The public key of a stored subject_pubkey (raw base64, already validated at issue). */
export function publicKeyFromRawBase64(raw: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw, 'base64').toString('base64url') }, format: 'jwk' });
}
