import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from './ledger-hash';

/**
 * A signed ledger checkpoint: the worker's statement of the ledger's state, signed with its Ed25519
 * key and kept outside Postgres (a JetStream stream that refuses deletes and purges). Like a
 * Certificate Transparency signed tree head (RFC 9162 section 4.10) or a CloudTrail digest file: a
 * later reader with only the public key can tell whether the ledger still holds what was signed.
 *
 * The statement signs two things:
 * - `head_digest`: SHA-256 of the ledger's head entry (seq, event id, hash). The head itself
 *   travels beside the statement on the stream, for the operator; tenants get only the digest,
 *   which says nothing about other tenants' entries.
 * - `root` and `tree_size`: the RFC 6962 Merkle tree over the heads of every tenant chain (see
 *   tenant-tree.ts), against which a tenant proves its own chain's head.
 *
 * Signed bytes: the domain string, a newline, then the RFC 8785 canonical JSON of the statement.
 */
export const CHECKPOINT_DOMAIN = 'vm-tenant ledger checkpoint v1';
const HEAD_DOMAIN = 'vm-tenant ledger head v1';

export interface ChainHead {
  seq: string;
  event_id: string;
  hash: string;
}

export interface CheckpointStatement {
  v: 1;
  head_digest: string;
  tree_size: number;
  root: string;
  signed_at: string;
  /** Hex SHA-256 of the signer's public key (SPKI DER): which key to check the signature with. */
  key_id: string;
}

/** What a tenant is given: the statement and its signature. */
export interface SignedCheckpoint extends CheckpointStatement {
  /** Base64 Ed25519 signature over the signed bytes. */
  signature: string;
}

/** What the stream holds: the signed checkpoint and, for the operator, the head it digests. */
export interface StoredCheckpoint extends SignedCheckpoint {
  head: ChainHead;
}

function signedBytes(s: CheckpointStatement): Buffer {
  const statement = { v: s.v, head_digest: s.head_digest, tree_size: s.tree_size, root: s.root, signed_at: s.signed_at, key_id: s.key_id };
  return Buffer.from(`${CHECKPOINT_DOMAIN}\n${canonicalJson(statement)}`, 'utf8');
}

export function headDigest(head: ChainHead): string {
  return createHash('sha256').update(`${HEAD_DOMAIN}\n${canonicalJson({ seq: head.seq, event_id: head.event_id, hash: head.hash })}`).digest('hex');
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function signCheckpoint(head: ChainHead, tree: { size: number; root: string }, privateKey: KeyObject, signedAt: Date): StoredCheckpoint {
  const statement: CheckpointStatement = {
    v: 1,
    head_digest: headDigest(head),
    tree_size: tree.size,
    root: tree.root,
    signed_at: signedAt.toISOString(),
    key_id: keyIdOf(createPublicKey(privateKey)),
  };
  return { ...statement, signature: sign(null, signedBytes(statement), privateKey).toString('base64'), head: { seq: head.seq, event_id: head.event_id, hash: head.hash } };
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Whether a checkpoint (as a tenant gets it) is well formed and signed by this key. */
export function verifySignedCheckpoint(value: unknown, publicKey: KeyObject): value is SignedCheckpoint {
  const c = value as Partial<SignedCheckpoint> | null;
  const wellFormed =
    c !== null &&
    typeof c === 'object' &&
    c.v === 1 &&
    typeof c.head_digest === 'string' &&
    HEX64.test(c.head_digest) &&
    Number.isSafeInteger(c.tree_size) &&
    (c.tree_size ?? -1) >= 0 &&
    typeof c.root === 'string' &&
    HEX64.test(c.root) &&
    typeof c.signed_at === 'string' &&
    typeof c.key_id === 'string' &&
    typeof c.signature === 'string';
  if (!wellFormed) return false;
  const checkpoint = c as SignedCheckpoint;
  if (checkpoint.key_id !== keyIdOf(publicKey)) return false;
  return verify(null, signedBytes(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64'));
}

/** The tenant's copy: the signed statement without the global head. */
export function withoutHead(checkpoint: StoredCheckpoint): SignedCheckpoint {
  const { head: _head, ...signed } = checkpoint;
  return signed;
}

/**
 * Parses a message of the checkpoint stream. Returns null unless it is signed by this key and its
 * head matches the signed digest: either way, not something the key holder signed.
 */
export function verifyCheckpoint(text: string, publicKey: KeyObject): StoredCheckpoint | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (!verifySignedCheckpoint(parsed, publicKey)) return null;
  const head = (parsed as Partial<StoredCheckpoint>).head;
  const headOk = head !== null && typeof head === 'object' && typeof head.seq === 'string' && /^[1-9]\d{0,18}$/.test(head.seq) && typeof head.event_id === 'string' && typeof head.hash === 'string';
  if (!headOk || headDigest(head) !== parsed.head_digest) return null;
  const { v, head_digest, tree_size, root, signed_at, key_id, signature } = parsed;
  return { v, head_digest, tree_size, root, signed_at, key_id, signature, head: { seq: head.seq, event_id: head.event_id, hash: head.hash } };
}
