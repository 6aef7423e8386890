import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './ledger-hash';

/**
 * A signed ledger checkpoint: the worker's statement "the ledger's entry `seq` has hash `hash`",
 * signed with its Ed25519 key and kept outside Postgres (a JetStream stream that refuses deletes
 * and purges). Like a Certificate Transparency signed tree head (RFC 9162 section 4.10) or a
 * CloudTrail digest file: a later reader with only the public key can tell whether the ledger it
 * is shown still contains, unchanged, everything that was signed.
 *
 * Signed bytes: the domain string below, a newline, then the RFC 8785 canonical JSON of the body.
 * The domain string keeps a checkpoint signature from being valid for any other message.
 */
export const CHECKPOINT_DOMAIN = 'vm-tenant ledger checkpoint v1';

export interface CheckpointBody {
  v: 1;
  /** The head of the ledger when signed: a decimal seq, its entry's event id and hash. */
  seq: string;
  event_id: string;
  hash: string;
  signed_at: string;
  /** Hex SHA-256 of the signer's public key (SPKI DER): which key to check the signature with. */
  key_id: string;
}

export interface SignedCheckpoint extends CheckpointBody {
  /** Base64 Ed25519 signature over the signed bytes. */
  signature: string;
}

function signedBytes(body: CheckpointBody): Buffer {
  const { v, seq, event_id, hash, signed_at, key_id } = body;
  return Buffer.from(`${CHECKPOINT_DOMAIN}\n${canonicalJson({ v, seq, event_id, hash, signed_at, key_id })}`, 'utf8');
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function signCheckpoint(head: { seq: string; event_id: string; hash: string }, privateKey: KeyObject, signedAt: Date): SignedCheckpoint {
  const body: CheckpointBody = { v: 1, seq: head.seq, event_id: head.event_id, hash: head.hash, signed_at: signedAt.toISOString(), key_id: keyIdOf(createPublicKey(privateKey)) };
  return { ...body, signature: sign(null, signedBytes(body), privateKey).toString('base64') };
}

/**
 * Parses a stored checkpoint and checks its signature with the given public key. Returns null when
 * the text is not a well-formed checkpoint or the signature does not verify: either way, not
 * something the key holder signed.
 */
export function verifyCheckpoint(text: string, publicKey: KeyObject): SignedCheckpoint | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  const c = parsed as Partial<SignedCheckpoint>;
  const wellFormed =
    c !== null &&
    typeof c === 'object' &&
    c.v === 1 &&
    typeof c.seq === 'string' &&
    /^[1-9]\d{0,18}$/.test(c.seq) &&
    typeof c.event_id === 'string' &&
    typeof c.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(c.hash) &&
    typeof c.signed_at === 'string' &&
    typeof c.key_id === 'string' &&
    typeof c.signature === 'string';
  if (!wellFormed) return null;
  const checkpoint = c as SignedCheckpoint;
  if (checkpoint.key_id !== keyIdOf(publicKey)) return null;
  const ok = verify(null, signedBytes(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64'));
  return ok ? { v: 1, seq: checkpoint.seq, event_id: checkpoint.event_id, hash: checkpoint.hash, signed_at: checkpoint.signed_at, key_id: checkpoint.key_id, signature: checkpoint.signature } : null;
}
