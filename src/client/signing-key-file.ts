import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import sshpk from 'sshpk';
import { signingKeyFrom, type RequestSigningKey } from './request-signing';

export type SigningKeyErrorCode = 'key_unreadable' | 'key_invalid' | 'key_encrypted' | 'key_not_ed25519';

export class SigningKeyError extends Error {
  override readonly name = 'SigningKeyError';
  constructor(
    message: string,
    readonly code: SigningKeyErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** OpenSSH's own format (`ssh-keygen` since 7.8), which node's crypto cannot read: sshpk parses it. */
function fromOpenSsh(text: string): KeyObject {
  let key: sshpk.PrivateKey;
  try {
    key = sshpk.parsePrivateKey(text, 'ssh');
  } catch (error) {
    if (error instanceof sshpk.KeyEncryptedError)
      throw new SigningKeyError('the key is protected by a passphrase; use an unencrypted copy (ssh-keygen -p -N "" -f <copy>)', 'key_encrypted', {
        cause: error,
      });
    throw new SigningKeyError('the key is not a valid OpenSSH private key', 'key_invalid', { cause: error });
  }
  if (key.type !== 'ed25519') throw new SigningKeyError(`the key is ${key.type}, not Ed25519`, 'key_not_ed25519');
  // The Ed25519 parts: k, the 32-byte private seed; A, the public key.
  const part = (name: string) =>
    Buffer.from(key.parts.find((p) => p.name === name)?.data ?? [])
      .subarray(0, 32)
      .toString('base64url');
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: part('k'), x: part('A') }, format: 'jwk' });
}

function fromPem(text: string): KeyObject {
  try {
    return createPrivateKey({ key: text, format: 'pem' });
  } catch (error) {
    if (/ENCRYPTED/.test(text))
      throw new SigningKeyError('the key is protected by a passphrase; use an unencrypted PKCS#8 copy', 'key_encrypted', { cause: error });
    throw new SigningKeyError('the key is not a valid PEM private key', 'key_invalid', { cause: error });
  }
}

/** An Ed25519 private key from the text of an OpenSSH private key file (`~/.ssh/id_ed25519`) or a PEM PKCS#8 file. */
export function parseSigningKey(text: string): RequestSigningKey {
  const trimmed = text.trim();
  let key: KeyObject;
  if (trimmed.startsWith('-----BEGIN OPENSSH PRIVATE KEY-----')) key = fromOpenSsh(trimmed);
  else if (trimmed.startsWith('-----BEGIN ') && trimmed.includes('PRIVATE KEY-----')) key = fromPem(trimmed);
  else throw new SigningKeyError('the key file holds no private key (expected an OpenSSH or PEM PKCS#8 Ed25519 private key)', 'key_invalid');
  if (key.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`the key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`, 'key_not_ed25519');
  return signingKeyFrom(key);
}

export async function readSigningKey(file: string): Promise<RequestSigningKey> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SigningKeyError(`cannot read the key ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'key_unreadable', { cause: error });
  }
  return parseSigningKey(text);
}
