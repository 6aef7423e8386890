import { verify as verifyEd25519 } from 'node:crypto';
import { ExpiredError, httpbis, type SignatureParameters } from 'http-message-signatures';
import { parseDictionary } from 'structured-headers';
import { checkContentDigest } from './content-digest';
import {
  keyIdOf,
  publicKeyFromRawBase64,
  REQUIRED_SIGNATURE_PARAMS,
  SIGNATURE_ALGORITHM,
  SIGNATURE_CLOCK_SKEW_SECONDS,
  SIGNED_COMPONENTS,
} from './request-signature-profile';

export interface SignedRequest {
  method: string;
  /** The URI the client addressed, as the API reconstructs it (scheme, host, path and query). */
  targetUri: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body as received, before parsing; empty when there was none. */
  body: Uint8Array;
}

export type SignatureRefusal = 'missing' | 'malformed' | 'key_mismatch' | 'invalid' | 'expired' | 'digest_mismatch';

export type SignatureVerdict = { ok: true; signature: Buffer; created: Date } | { ok: false; refusal: SignatureRefusal; reason: string };

class KeyMismatch extends Error {
  override readonly name = 'KeyMismatch';
}

function single(headers: SignedRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function countMembers(field: string): number | null {
  try {
    return parseDictionary(field).size;
  } catch {
    return null;
  }
}

/**
 * Checks a request against the key its token is bound to: exactly one RFC 9421 signature, Ed25519,
 * covering SIGNED_COMPONENTS with `created` and `nonce`, made by that key no more than `maxAgeSeconds`
 * ago, over a Content-Digest that matches the body received. Whether the signature was seen before
 * is the caller's to check (it needs the database); the verdict carries what to record.
 */
export async function verifyRequestSignature(
  request: SignedRequest,
  subjectPubkey: string,
  options: { maxAgeSeconds: number; now: Date },
): Promise<SignatureVerdict> {
  const signatureField = single(request.headers, 'signature');
  const inputField = single(request.headers, 'signature-input');
  if (signatureField === undefined && inputField === undefined)
    return { ok: false, refusal: 'missing', reason: 'The request has no Signature and Signature-Input fields.' };
  if (signatureField === undefined || inputField === undefined)
    return { ok: false, refusal: 'malformed', reason: 'Signature and Signature-Input must be sent together.' };
  if (countMembers(inputField) !== 1 || countMembers(signatureField) !== 1)
    return { ok: false, refusal: 'malformed', reason: 'Send exactly one signature, in well-formed Signature and Signature-Input fields.' };

  const publicKey = publicKeyFromRawBase64(subjectPubkey);
  const boundKeyId = keyIdOf(publicKey);
  let params: SignatureParameters = {};
  let signature: Buffer | undefined;
  let verified: boolean | null;
  try {
    verified = await httpbis.verifyMessage(
      {
        async keyLookup(found) {
          params = found;
          if (found.keyid !== undefined && found.keyid !== boundKeyId) throw new KeyMismatch();
          return {
            id: boundKeyId,
            algs: [SIGNATURE_ALGORITHM],
            verify: async (data, bytes) => {
              signature = bytes;
              return verifyEd25519(null, data, publicKey, bytes);
            },
          };
        },
        requiredFields: [...SIGNED_COMPONENTS],
        requiredParams: [...REQUIRED_SIGNATURE_PARAMS],
        maxAge: options.maxAgeSeconds,
        notAfter: new Date(options.now.getTime() + SIGNATURE_CLOCK_SKEW_SECONDS * 1000),
      },
      { method: request.method, url: request.targetUri, headers: request.headers as Record<string, string | string[]> },
    );
  } catch (error) {
    if (error instanceof KeyMismatch)
      return {
        ok: false,
        refusal: 'key_mismatch',
        reason: `The request is signed with key ${String(params.keyid)}, not the key this token is bound to (${boundKeyId}).`,
      };
    if (error instanceof ExpiredError) {
      const ahead = params.created instanceof Date && params.created.getTime() > options.now.getTime();
      const reason = ahead
        ? `The signature's created time is more than ${SIGNATURE_CLOCK_SKEW_SECONDS} s ahead of the API's clock.`
        : `The signature was created more than ${options.maxAgeSeconds} s ago.`;
      return { ok: false, refusal: 'expired', reason };
    }
    return {
      ok: false,
      refusal: 'malformed',
      reason: `The signature cannot be checked: ${error instanceof Error ? error.message : String(error)}. It must cover ${SIGNED_COMPONENTS.join(', ')} with created and nonce, alg ed25519.`,
    };
  }
  if (verified !== true || signature === undefined || !(params.created instanceof Date)) {
    return {
      ok: false,
      refusal: 'invalid',
      reason: 'The signature does not verify with the key this token is bound to, for this method, URI, token and Content-Digest.',
    };
  }
  const digest = checkContentDigest(single(request.headers, 'content-digest'), request.body);
  if (digest === 'mismatch') return { ok: false, refusal: 'digest_mismatch', reason: 'The Content-Digest does not match the body received.' };
  if (digest !== 'match')
    return { ok: false, refusal: 'malformed', reason: 'The Content-Digest must hold a sha-256 or sha-512 digest of the body (RFC 9530).' };
  return { ok: true, signature, created: params.created };
}
