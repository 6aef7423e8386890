import { createHash, type KeyObject } from 'node:crypto';
import {
  checkpointFromMessage,
  checkpointSignedBytes,
  isHex64,
  keyIdOf,
  type StoredCheckpoint,
  type StoredCheckpointV1,
  type StoredCheckpointV2,
} from './checkpoint';
import { keyRotationFromMessage, rotationSignedBytes, type StoredKeyRotation } from './checkpoint-rotation';

/**
 * A link of the checkpoint series, as the stream holds it: a checkpoint (version 2), a key
 * rotation, or a version 1 checkpoint from before chaining ("legacy"). Its link hash, which the
 * next link names as `previous`, is the SHA-256 of its signed bytes (domain string, newline, JCS
 * of the statement): the same for every copy of the message, and different for any other
 * statement, since the domain strings differ by kind.
 */
export type Link =
  | { kind: 'checkpoint'; hash: string; checkpoint: StoredCheckpointV2 }
  | { kind: 'legacy'; hash: string; checkpoint: StoredCheckpointV1 }
  | { kind: 'rotation'; hash: string; rotation: StoredKeyRotation; oldKey: KeyObject; newKey: KeyObject };

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

export function checkpointLinkHash(checkpoint: StoredCheckpoint): string {
  return sha256(checkpointSignedBytes(checkpoint));
}

export function rotationLinkHash(rotation: StoredKeyRotation): string {
  return sha256(rotationSignedBytes(rotation));
}

/**
 * The link hash of a message, without checking any signature: to tell whether a stream message is
 * a link already verified (the same statement), never to trust one. null: not a link.
 */
export function linkHashOfMessage(text: string): string | null {
  try {
    const value = JSON.parse(text) as StoredCheckpoint | StoredKeyRotation | null;
    if (value === null || typeof value !== 'object') return null;
    if ('type' in value && value.type === 'key_rotation') return rotationLinkHash(value);
    const v = (value as { v?: unknown }).v;
    return v === 1 || v === 2 ? checkpointLinkHash(value as StoredCheckpoint) : null;
  } catch {
    return null;
  }
}

/** The key id a link is signed with (a rotation: the old key's). */
export const signerOf = (link: Link): string => (link.kind === 'rotation' ? link.rotation.key_id : link.checkpoint.key_id);

/** What is stored for a link: the message as published. */
export const messageOf = (link: Link): StoredCheckpoint | StoredKeyRotation => (link.kind === 'rotation' ? link.rotation : link.checkpoint);

export type ParsedMessage =
  | { link: Link }
  /** Not a link this key set can vouch for; `keyId` when it is a checkpoint signed by a key not in the set. */
  | { foreign: string; keyId?: string };

/** Classifies one message of the checkpoint subject; `keys` are the checkpoint keys known by id. */
export function parseLinkMessage(text: string, keys: ReadonlyMap<string, KeyObject>): ParsedMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { foreign: 'not JSON' };
  }
  return parseLinkValue(parsed, keys);
}

export function parseLinkValue(parsed: unknown, keys: ReadonlyMap<string, KeyObject>): ParsedMessage {
  if (parsed === null || typeof parsed !== 'object') return { foreign: 'not a checkpoint' };
  const value = parsed as { type?: unknown; v?: unknown; key_id?: unknown; signature?: unknown };
  if (value.type === 'key_rotation') {
    const found = keyRotationFromMessage(parsed);
    if (!found) return { foreign: 'a key rotation whose signatures do not verify' };
    return { link: { kind: 'rotation', hash: rotationLinkHash(found.rotation), ...found } };
  }
  if ((value.v !== 1 && value.v !== 2) || typeof value.signature !== 'string' || value.signature === '') return { foreign: 'not a signed checkpoint' };
  if (!isHex64(value.key_id)) return { foreign: 'a checkpoint without a key id' };
  const key = keys.get(value.key_id);
  if (!key) return { foreign: `a checkpoint signed by key ${value.key_id.slice(0, 16)}, which is not a key of this series`, keyId: value.key_id };
  const checkpoint = checkpointFromMessage(parsed, key);
  if (!checkpoint) return { foreign: `a checkpoint whose signature or digests do not verify with key ${value.key_id.slice(0, 16)}` };
  const hash = checkpointLinkHash(checkpoint);
  return checkpoint.v === 1 ? { link: { kind: 'legacy', hash, checkpoint } } : { link: { kind: 'checkpoint', hash, checkpoint } };
}

/** The key ring a verifier starts with: the pinned key, and every key a rotation message carries (trust is the chain's business). */
export function keyRingOf(
  pinned: readonly KeyObject[],
  rotations: Iterable<{ oldKey: KeyObject; newKey: KeyObject; rotation: StoredKeyRotation }>,
): Map<string, KeyObject> {
  const ring = new Map<string, KeyObject>();
  for (const key of pinned) ring.set(keyIdOf(key), key);
  for (const r of rotations) {
    ring.set(r.rotation.key_id, r.oldKey);
    ring.set(r.rotation.new_key_id, r.newKey);
  }
  return ring;
}
