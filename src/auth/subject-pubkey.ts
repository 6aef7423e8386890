import { createPublicKey } from 'node:crypto';

/**
 * Accepts an Ed25519 public key as raw base64 (32 bytes), PEM (SPKI) or an OpenSSH `ssh-ed25519`
 * line, and returns it normalised to raw base64. Returns null for anything else.
 */
export function normaliseEd25519PublicKey(input: string): string | null {
  const text = input.trim();
  if (text.length === 0 || text.length > 4096) return null;
  if (text.startsWith('-----BEGIN')) return fromPem(text);
  if (text.startsWith('ssh-ed25519 ')) return fromOpenSsh(text);
  return fromRawBase64(text);
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function fromPem(pem: string): string | null {
  // createPublicKey also derives a public key from a private one; a pasted private key must be refused, not used.
  if (!pem.startsWith('-----BEGIN PUBLIC KEY-----')) return null;
  try {
    const key = createPublicKey({ key: pem, format: 'pem' });
    if (key.asymmetricKeyType !== 'ed25519') return null;
    const der = key.export({ format: 'der', type: 'spki' });
    return der.subarray(SPKI_ED25519_PREFIX.length).toString('base64');
  } catch {
    return null;
  }
}

function fromOpenSsh(line: string): string | null {
  const blob = decodeBase64(line.split(/\s+/)[1] ?? '');
  if (!blob) return null;
  // string "ssh-ed25519" followed by string <32 byte key>, each length-prefixed (uint32 BE).
  let offset = 0;
  const readString = (): Buffer | null => {
    if (offset + 4 > blob.length) return null;
    const length = blob.readUInt32BE(offset);
    offset += 4;
    if (offset + length > blob.length) return null;
    const value = blob.subarray(offset, offset + length);
    offset += length;
    return value;
  };
  const type = readString();
  const key = readString();
  if (!type || !key || type.toString() !== 'ssh-ed25519' || key.length !== 32 || offset !== blob.length) return null;
  return isValidEd25519(key) ? key.toString('base64') : null;
}

function fromRawBase64(text: string): string | null {
  const raw = decodeBase64(text);
  if (!raw || raw.length !== 32) return null;
  return isValidEd25519(raw) ? raw.toString('base64') : null;
}

function decodeBase64(text: string): Buffer | null {
  const normalised = text.replace(/-/g, '+').replace(/_/g, '/');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(normalised)) return null;
  return Buffer.from(normalised, 'base64');
}

function isValidEd25519(raw: Buffer): boolean {
  try {
    createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
    return true;
  } catch {
    return false;
  }
}
