import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { isHex64, keyIdOf } from './checkpoint';
import { canonicalJson } from './ledger-hash';

/**
 * A key rotation: a link of the checkpoint series in which the signing key hands over to a new
 * one. The old key signs the statement (`signature`: "after `previous`, checkpoints are signed by
 * `new_key_id`"), and the new key signs the same bytes (`new_key_signature`: its holder has it,
 * and vouches for the series up to here). Both public keys travel beside the statement as PEM
 * (each is bound by its key id, the SHA-256 of its SPKI DER), so a verifier that pinned either key
 * can check the other.
 *
 * Signed bytes: "vm-tenant ledger key rotation v2", a newline, the RFC 8785 JSON of the statement.
 */
export const KEY_ROTATION_DOMAIN = 'vm-tenant ledger key rotation v2';

export interface KeyRotationStatement {
  v: 2;
  type: 'key_rotation';
  /** The link hash of the series' link before the rotation. */
  previous: string;
  key_id: string;
  new_key_id: string;
  signed_at: string;
}

export interface StoredKeyRotation extends KeyRotationStatement {
  signature: string;
  new_key_signature: string;
  public_key_pem: string;
  new_public_key_pem: string;
}

export function rotationStatementOf(r: KeyRotationStatement): KeyRotationStatement {
  return { v: 2, type: 'key_rotation', previous: r.previous, key_id: r.key_id, new_key_id: r.new_key_id, signed_at: r.signed_at };
}

export function rotationSignedBytes(r: KeyRotationStatement): Buffer {
  return Buffer.from(`${KEY_ROTATION_DOMAIN}\n${canonicalJson(rotationStatementOf(r))}`, 'utf8');
}

const pemOf = (key: KeyObject): string => key.export({ type: 'spki', format: 'pem' }).toString();

export function signKeyRotation(previous: string, oldKey: KeyObject, newKey: KeyObject, signedAt: Date): StoredKeyRotation {
  const oldPublic = createPublicKey(oldKey);
  const newPublic = createPublicKey(newKey);
  const statement: KeyRotationStatement = {
    v: 2,
    type: 'key_rotation',
    previous,
    key_id: keyIdOf(oldPublic),
    new_key_id: keyIdOf(newPublic),
    signed_at: signedAt.toISOString(),
  };
  const bytes = rotationSignedBytes(statement);
  return {
    ...statement,
    signature: sign(null, bytes, oldKey).toString('base64'),
    new_key_signature: sign(null, bytes, newKey).toString('base64'),
    public_key_pem: pemOf(oldPublic),
    new_public_key_pem: pemOf(newPublic),
  };
}

function ed25519(pem: unknown, keyId: string): KeyObject | null {
  if (typeof pem !== 'string') return null;
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' && keyIdOf(key) === keyId ? key : null;
  } catch {
    return null;
  }
}

/**
 * A parsed stream message, if it is a key rotation whose two signatures verify with the two keys
 * it carries; null otherwise. Whether the old key was the series' key at that point is the
 * chain's question (checkpoint-chain.ts), not this one.
 */
export function keyRotationFromMessage(parsed: unknown): { rotation: StoredKeyRotation; oldKey: KeyObject; newKey: KeyObject } | null {
  const r = parsed as Partial<StoredKeyRotation> | null;
  if (r === null || typeof r !== 'object' || r.v !== 2 || r.type !== 'key_rotation') return null;
  if (!isHex64(r.previous) || !isHex64(r.key_id) || !isHex64(r.new_key_id) || r.key_id === r.new_key_id || typeof r.signed_at !== 'string') return null;
  if (typeof r.signature !== 'string' || typeof r.new_key_signature !== 'string') return null;
  const oldKey = ed25519(r.public_key_pem, r.key_id);
  const newKey = ed25519(r.new_public_key_pem, r.new_key_id);
  if (!oldKey || !newKey) return null;
  const rotation = r as StoredKeyRotation;
  const bytes = rotationSignedBytes(rotation);
  if (
    !verify(null, bytes, oldKey, Buffer.from(rotation.signature, 'base64')) ||
    !verify(null, bytes, newKey, Buffer.from(rotation.new_key_signature, 'base64'))
  )
    return null;
  return {
    rotation: {
      ...rotationStatementOf(rotation),
      signature: rotation.signature,
      new_key_signature: rotation.new_key_signature,
      public_key_pem: rotation.public_key_pem,
      new_public_key_pem: rotation.new_public_key_pem,
    },
    oldKey,
    newKey,
  };
}
