import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { createSigner, httpbis } from 'http-message-signatures';
import { contentDigestHeader } from '../auth/content-digest';
import { keyIdOf, SIGNATURE_ALGORITHM, SIGNATURE_LABEL, SIGNATURE_PARAMS, SIGNED_COMPONENTS } from '../auth/request-signature-profile';

/** An Ed25519 private key ready to sign requests; `keyId` is its public key as raw base64. */
export interface RequestSigningKey {
  privateKey: KeyObject;
  keyId: string;
}

export function signingKeyFrom(privateKey: KeyObject): RequestSigningKey {
  if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('request signing needs an Ed25519 private key');
  return { privateKey, keyId: keyIdOf(createPublicKey(privateKey)) };
}

export interface RequestToSign {
  method: string;
  url: string | URL;
  headers: Record<string, string>;
  body?: Uint8Array | string;
}

export interface SigningOptions {
  /** Defaults to now; a test may sign in the past. */
  created?: Date;
  /** Defaults to 16 random bytes. */
  nonce?: string;
}

/**
 * The headers of a request signed for a key-bound token (RFC 9421, docs/bound-tokens.md): the
 * given ones, lower-cased, plus Content-Digest (RFC 9530) of the body, Signature-Input and Signature.
 * Sign last: a header changed afterwards (Authorization above all) breaks the signature.
 */
export async function signedHeaders(request: RequestToSign, key: RequestSigningKey, options: SigningOptions = {}): Promise<Record<string, string>> {
  const body = typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : (request.body ?? new Uint8Array());
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers['content-digest'] = contentDigestHeader(body);
  const fields = SIGNED_COMPONENTS.filter((component) => component.startsWith('@') || component in headers);
  const signed = await httpbis.signMessage(
    {
      key: createSigner(key.privateKey, SIGNATURE_ALGORITHM, key.keyId),
      name: SIGNATURE_LABEL,
      fields,
      params: [...SIGNATURE_PARAMS],
      paramValues: { created: options.created ?? new Date(), nonce: options.nonce ?? randomBytes(16).toString('base64url') },
    },
    { method: request.method.toUpperCase(), url: new URL(request.url).href, headers },
  );
  return Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), String(value)]));
}

/**
 * A fetch Request signed for a key-bound token, e.g. in an openapi-fetch middleware:
 * `client.use({ onRequest: ({ request }) => signFetchRequest(request, key) })`.
 */
export async function signFetchRequest(request: Request, key: RequestSigningKey, options: SigningOptions = {}): Promise<Request> {
  const body = request.body === null ? undefined : new Uint8Array(await request.clone().arrayBuffer());
  const headers = await signedHeaders({ method: request.method, url: request.url, headers: Object.fromEntries(request.headers), body }, key, options);
  return new Request(request.url, { method: request.method, headers, body, signal: request.signal, redirect: request.redirect });
}
