import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { entriesDigest, type EntryTreeHead } from './entry-tree';
import { canonicalJson } from './ledger-hash';

/**
 * A signed ledger checkpoint: the worker's statement of the ledger's state, signed with its Ed25519
 * key and kept outside Postgres (a JetStream stream that refuses deletes and purges). Like a
 * Certificate Transparency signed tree head (RFC 9162 section 4.10) chained like CloudTrail digest
 * files: a later reader with only the public key can tell whether the ledger still holds what was
 * signed, and whether any checkpoint is missing.
 *
 * Version 2 (what the signer signs) commits to:
 * - `head_digest`: SHA-256 of the ledger's head entry (seq, event id, hash);
 * - `entries_digest`: SHA-256 of the size and root of the entry tree (entry-tree.ts): every field
 *   of every entry up to the head;
 * - `root` and `tree_size`: the RFC 6962 Merkle tree over the heads of every tenant chain
 *   (tenant-tree.ts), against which a tenant proves its own chain's head;
 * - `previous`: the link hash (checkpoint-link.ts) of the checkpoint (or key rotation) before it in
 *   the series; null for a series' first checkpoint on an empty stream, or the link hash of the
 *   last version 1 checkpoint when the series follows them on an older stream.
 * The head and the entry tree's size and root travel beside the statement on the stream, for the
 * operator; tenants get only the digests, which say nothing about other tenants' entries.
 *
 * Version 1 (before chaining; `head_digest`, `tree_size`, `root` only) is still read and verified.
 *
 * Signed bytes: the domain string of the version, a newline, then the RFC 8785 canonical JSON of
 * the statement.
 */
export const CHECKPOINT_DOMAIN = 'vm-tenant ledger checkpoint v2';
export const CHECKPOINT_DOMAIN_V1 = 'vm-tenant ledger checkpoint v1';
const HEAD_DOMAIN = 'vm-tenant ledger head v1';

export interface ChainHead {
  seq: string;
  event_id: string;
  hash: string;
}

export interface CheckpointStatementV1 {
  v: 1;
  head_digest: string;
  tree_size: number;
  root: string;
  signed_at: string;
  /** Hex SHA-256 of the signer's public key (SPKI DER): which key to check the signature with. */
  key_id: string;
}

export interface CheckpointStatementV2 {
  v: 2;
  head_digest: string;
  entries_digest: string;
  tree_size: number;
  root: string;
  previous: string | null;
  signed_at: string;
  key_id: string;
}

export type CheckpointStatement = CheckpointStatementV1 | CheckpointStatementV2;

/** What a tenant is given: the statement and its signature (base64 Ed25519 over the signed bytes). */
export type SignedCheckpoint = CheckpointStatement & { signature: string };

export type StoredCheckpointV1 = CheckpointStatementV1 & { signature: string; head: ChainHead };
export type StoredCheckpointV2 = CheckpointStatementV2 & { signature: string; head: ChainHead; entries: EntryTreeHead };

/** What the stream holds: the signed checkpoint and, for the operator, what its digests digest. */
export type StoredCheckpoint = StoredCheckpointV1 | StoredCheckpointV2;

/** The statement alone, member by member (a stored message carries more). */
export function statementOf(c: CheckpointStatement): CheckpointStatement {
  if (c.v === 1) return { v: 1, head_digest: c.head_digest, tree_size: c.tree_size, root: c.root, signed_at: c.signed_at, key_id: c.key_id };
  return {
    v: 2,
    head_digest: c.head_digest,
    entries_digest: c.entries_digest,
    tree_size: c.tree_size,
    root: c.root,
    previous: c.previous,
    signed_at: c.signed_at,
    key_id: c.key_id,
  };
}

export function checkpointSignedBytes(c: CheckpointStatement): Buffer {
  return Buffer.from(`${c.v === 1 ? CHECKPOINT_DOMAIN_V1 : CHECKPOINT_DOMAIN}\n${canonicalJson(statementOf(c))}`, 'utf8');
}

export function headDigest(head: ChainHead): string {
  return createHash('sha256')
    .update(`${HEAD_DOMAIN}\n${canonicalJson({ seq: head.seq, event_id: head.event_id, hash: head.hash })}`)
    .digest('hex');
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export interface CheckpointContent {
  head: ChainHead;
  /** The tree of tenant chain heads as of the head. */
  tree: { size: number; root: string };
  /** The entry tree as of the head. */
  entries: EntryTreeHead;
  /** The link hash of the series' previous link, or null (see above). */
  previous: string | null;
}

export function signCheckpoint(content: CheckpointContent, privateKey: KeyObject, signedAt: Date): StoredCheckpointV2 {
  const { head, tree, entries, previous } = content;
  const statement: CheckpointStatementV2 = {
    v: 2,
    head_digest: headDigest(head),
    entries_digest: entriesDigest(entries),
    tree_size: tree.size,
    root: tree.root,
    previous,
    signed_at: signedAt.toISOString(),
    key_id: keyIdOf(createPublicKey(privateKey)),
  };
  return {
    ...statement,
    signature: sign(null, checkpointSignedBytes(statement), privateKey).toString('base64'),
    head: { seq: head.seq, event_id: head.event_id, hash: head.hash },
    entries: { size: entries.size, root: entries.root },
  };
}

const HEX64 = /^[0-9a-f]{64}$/;
export const isHex64 = (value: unknown): value is string => typeof value === 'string' && HEX64.test(value);

function wellFormed(value: object): boolean {
  const c = value as Partial<Omit<CheckpointStatementV2, 'v'>> & { v?: unknown; signature?: unknown };
  const common =
    isHex64(c.head_digest) &&
    Number.isSafeInteger(c.tree_size) &&
    (c.tree_size ?? -1) >= 0 &&
    isHex64(c.root) &&
    typeof c.signed_at === 'string' &&
    isHex64(c.key_id) &&
    typeof c.signature === 'string';
  if (c.v === 1) return common;
  return c.v === 2 && common && isHex64(c.entries_digest) && (c.previous === null || isHex64(c.previous));
}

/** Whether a checkpoint (as a tenant gets it) is well formed and signed by this key. */
export function verifySignedCheckpoint(value: unknown, publicKey: KeyObject): value is SignedCheckpoint {
  if (value === null || typeof value !== 'object' || !wellFormed(value)) return false;
  const checkpoint = value as SignedCheckpoint;
  if (checkpoint.key_id !== keyIdOf(publicKey)) return false;
  return verify(null, checkpointSignedBytes(checkpoint), publicKey, Buffer.from(checkpoint.signature, 'base64'));
}

/** The tenant's copy: the signed statement, without the head and the entry tree it digests. */
export function withoutHead(checkpoint: StoredCheckpoint): SignedCheckpoint {
  return { ...statementOf(checkpoint), signature: checkpoint.signature };
}

const isSeq = (value: unknown): value is string => typeof value === 'string' && /^[1-9]\d{0,18}$/.test(value);
const isCount = (value: unknown): value is string => typeof value === 'string' && /^(0|[1-9]\d{0,18})$/.test(value);

/**
 * A parsed stream message, if it is a checkpoint (either version) signed by this key whose head
 * (and, for version 2, entry tree) matches the signed digests; null otherwise: not something the
 * key holder signed.
 */
export function checkpointFromMessage(parsed: unknown, publicKey: KeyObject): StoredCheckpoint | null {
  if (!verifySignedCheckpoint(parsed, publicKey)) return null;
  const { head, entries } = parsed as Partial<StoredCheckpointV2>;
  const headOk = head !== null && typeof head === 'object' && isSeq(head.seq) && typeof head.event_id === 'string' && typeof head.hash === 'string';
  if (!headOk || headDigest(head) !== parsed.head_digest) return null;
  const ownHead = { seq: head.seq, event_id: head.event_id, hash: head.hash };
  if (parsed.v === 1) return { ...statementOf(parsed), signature: parsed.signature, head: ownHead } as StoredCheckpointV1;
  const entriesOk = entries !== null && typeof entries === 'object' && isCount(entries.size) && isHex64(entries.root);
  if (!entriesOk || entriesDigest(entries) !== parsed.entries_digest) return null;
  return { ...(statementOf(parsed) as CheckpointStatementV2), signature: parsed.signature, head: ownHead, entries: { size: entries.size, root: entries.root } };
}

/** The same, from the message's text. */
export function verifyCheckpoint(text: string, publicKey: KeyObject): StoredCheckpoint | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  return checkpointFromMessage(parsed, publicKey);
}
