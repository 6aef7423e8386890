import { createHash, createPrivateKey, createPublicKey, verify, type KeyObject } from 'node:crypto';
import { checkpointFromMessage, signCheckpoint, verifySignedCheckpoint, withoutHead } from '../../src/ledger/checkpoint';
import { checkpointLinkHash, parseLinkValue, rotationLinkHash } from '../../src/ledger/checkpoint-link';
import { keyRotationFromMessage, signKeyRotation } from '../../src/ledger/checkpoint-rotation';
import { entriesDigest, entryLeafHash, entryLeafJson, entryTreeOf } from '../../src/ledger/entry-tree';
import { leafHash, merkleRoot, MerkleFrontier } from '../../src/ledger/merkle';
import { tenantTree } from '../../src/ledger/tenant-tree';
import {
  GOLDEN_CHECKPOINT_LINK_HASH,
  GOLDEN_CHECKPOINT_SIGNATURE,
  GOLDEN_CHECKPOINT_SIGNED_BYTES,
  GOLDEN_ENTRIES_DIGEST_3,
  GOLDEN_ENTRY_1_LEAF_JSON,
  GOLDEN_ENTRY_LEAVES,
  GOLDEN_ENTRY_TREES,
  GOLDEN_KEY_1_ID,
  GOLDEN_KEY_1_SEED,
  GOLDEN_KEY_2_ID,
  GOLDEN_KEY_2_SEED,
  GOLDEN_ROTATION_LINK_HASH,
  GOLDEN_ROTATION_NEW_KEY_SIGNATURE,
  GOLDEN_ROTATION_SIGNATURE,
  GOLDEN_ROTATION_SIGNED_BYTES,
  GOLDEN_STORED_ENTRIES,
  GOLDEN_TENANT_CHAIN,
} from '../fixtures/ledger-golden-vectors';

const sha256 = (...parts: Buffer[]): string => createHash('sha256').update(Buffer.concat(parts)).digest('hex');
const hex = (h: string) => Buffer.from(h, 'hex');
const ed25519Key = (seed: string): KeyObject =>
  createPrivateKey({ key: Buffer.concat([hex('302e020100300506032b657004220420'), hex(seed)]), format: 'der', type: 'pkcs8' });
const key1 = ed25519Key(GOLDEN_KEY_1_SEED);
const key2 = ed25519Key(GOLDEN_KEY_2_SEED);

const genesis = () =>
  signCheckpoint(
    {
      head: { seq: '3', event_id: GOLDEN_STORED_ENTRIES[2]!.event_id, hash: GOLDEN_STORED_ENTRIES[2]!.hash },
      tree: tenantTree([
        { tenant_id: 'acme-corp', tenant_seq: '2', tenant_hash: GOLDEN_TENANT_CHAIN[1]!.tenant_hash },
        { tenant_id: null, tenant_seq: '1', tenant_hash: GOLDEN_TENANT_CHAIN[2]!.tenant_hash },
      ]),
      entries: entryTreeOf(GOLDEN_STORED_ENTRIES),
      previous: null,
    },
    key1,
    new Date('2026-12-31T23:59:59.999Z'),
  );

describe('the entry tree (every field of every entry)', () => {
  test('when entry 1 is put in a leaf, then the leaf hashes the hand-written JCS of every column with the entry domain', () => {
    expect(entryLeafJson(GOLDEN_STORED_ENTRIES[0]!)).toBe(GOLDEN_ENTRY_1_LEAF_JSON);
    expect(entryLeafHash(GOLDEN_STORED_ENTRIES[0]!)).toBe(sha256(Buffer.from([0]), Buffer.from(`vm-tenant ledger entry v2\n${GOLDEN_ENTRY_1_LEAF_JSON}`)));
    expect(GOLDEN_STORED_ENTRIES.map(entryLeafHash)).toEqual(GOLDEN_ENTRY_LEAVES);
  });

  test('when the golden entries are put in the tree, then its roots are the golden ones, computed by hand as RFC 9162 nodes', () => {
    expect([1, 2, 3].map((n) => entryTreeOf(GOLDEN_STORED_ENTRIES.slice(0, n)))).toEqual(GOLDEN_ENTRY_TREES);
    const [l1, l2, l3] = GOLDEN_ENTRY_LEAVES.map(hex);
    expect(GOLDEN_ENTRY_TREES[2]!.root).toBe(sha256(Buffer.from([1]), hex(sha256(Buffer.from([1]), l1!, l2!)), l3!));
    expect(entriesDigest(GOLDEN_ENTRY_TREES[2]!)).toBe(GOLDEN_ENTRIES_DIGEST_3);
    expect(GOLDEN_ENTRIES_DIGEST_3).toBe(sha256(Buffer.from(`vm-tenant ledger entries v2\n{"root":"${GOLDEN_ENTRY_TREES[2]!.root}","size":"3"}`)));
  });

  test("when any column of an entry changes, the operator's source_ip, user_agent and the seq included, then its leaf changes", () => {
    const entry = GOLDEN_STORED_ENTRIES[0]!;
    const changed = [
      { source_ip: '198.51.100.1' },
      { user_agent: 'other' },
      { seq: '7' },
      { tenant_seq: '9' },
      { request_id: null },
      { details: { ...entry.details, max_vms: 11 } },
      { hash: 'f'.repeat(64) },
    ];
    for (const change of changed) expect([change, entryLeafHash({ ...entry, ...change })]).not.toEqual([change, GOLDEN_ENTRY_LEAVES[0]]);
  });

  test('when leaves are appended one by one to a frontier, then its root is the RFC 6962 root at every size from 0 to 70', () => {
    const leaves = Array.from({ length: 70 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
    const frontier = MerkleFrontier.empty();
    expect(frontier.root()).toBe(merkleRoot([]));
    leaves.forEach((leaf, i) => {
      frontier.append(leaf);
      expect([i + 1, frontier.root()]).toEqual([i + 1, merkleRoot(leaves.slice(0, i + 1))]);
    });
    const copy = frontier.clone();
    copy.append(leaves[0]!);
    expect(frontier.size).toBe(70n);
    expect(copy.size).toBe(71n);
  });
});

describe('checkpoint format version 2', () => {
  test('when the golden genesis checkpoint is signed with the RFC 8032 key 1, then its bytes, signature and link hash are the golden ones', () => {
    const checkpoint = genesis();
    expect(checkpoint.key_id).toBe(GOLDEN_KEY_1_ID);
    expect(checkpoint.entries).toEqual(GOLDEN_ENTRY_TREES[2]);
    expect(checkpoint.signature).toBe(GOLDEN_CHECKPOINT_SIGNATURE);
    expect(verify(null, Buffer.from(GOLDEN_CHECKPOINT_SIGNED_BYTES), createPublicKey(key1), Buffer.from(GOLDEN_CHECKPOINT_SIGNATURE, 'base64'))).toBe(true);
    expect(checkpointLinkHash(checkpoint)).toBe(GOLDEN_CHECKPOINT_LINK_HASH);
    expect(GOLDEN_CHECKPOINT_LINK_HASH).toBe(sha256(Buffer.from(GOLDEN_CHECKPOINT_SIGNED_BYTES)));
  });

  test("when a stored checkpoint's head or entry tree is changed beside its statement, then it is not a checkpoint of the key", () => {
    const checkpoint = genesis();
    const publicKey = createPublicKey(key1);
    expect(checkpointFromMessage(JSON.parse(JSON.stringify(checkpoint)), publicKey)).toEqual(checkpoint);
    expect(checkpointFromMessage({ ...checkpoint, entries: GOLDEN_ENTRY_TREES[1] }, publicKey)).toBeNull();
    expect(checkpointFromMessage({ ...checkpoint, head: { ...checkpoint.head, seq: '2' } }, publicKey)).toBeNull();
    expect(checkpointFromMessage({ ...checkpoint, previous: GOLDEN_CHECKPOINT_LINK_HASH }, publicKey)).toBeNull();
    expect(checkpointFromMessage(checkpoint, createPublicKey(key2))).toBeNull();
  });

  test('when a tenant is given the checkpoint, then it carries digests only: no head, no entry count, and still verifies', () => {
    const tenantCopy = withoutHead(genesis());
    expect(Object.keys(tenantCopy).sort()).toEqual(['entries_digest', 'head_digest', 'key_id', 'previous', 'root', 'signature', 'signed_at', 'tree_size', 'v']);
    expect(verifySignedCheckpoint(tenantCopy, createPublicKey(key1))).toBe(true);
  });

  test("when key 1 rotates to key 2 after the genesis, then the rotation's bytes, both signatures and link hash are the golden ones", () => {
    const rotation = signKeyRotation(GOLDEN_CHECKPOINT_LINK_HASH, key1, key2, new Date('2027-01-01T00:00:00.000Z'));
    expect(rotation).toMatchObject({
      key_id: GOLDEN_KEY_1_ID,
      new_key_id: GOLDEN_KEY_2_ID,
      signature: GOLDEN_ROTATION_SIGNATURE,
      new_key_signature: GOLDEN_ROTATION_NEW_KEY_SIGNATURE,
    });
    expect(verify(null, Buffer.from(GOLDEN_ROTATION_SIGNED_BYTES), createPublicKey(key1), Buffer.from(GOLDEN_ROTATION_SIGNATURE, 'base64'))).toBe(true);
    expect(verify(null, Buffer.from(GOLDEN_ROTATION_SIGNED_BYTES), createPublicKey(key2), Buffer.from(GOLDEN_ROTATION_NEW_KEY_SIGNATURE, 'base64'))).toBe(true);
    expect(rotationLinkHash(rotation)).toBe(GOLDEN_ROTATION_LINK_HASH);
    expect(parseLinkValue(JSON.parse(JSON.stringify(rotation)), new Map())).toMatchObject({ link: { kind: 'rotation', hash: GOLDEN_ROTATION_LINK_HASH } });
  });

  test("when a rotation lacks the new key's signature, or carries a public key that is not its key id, then it is not a rotation", () => {
    const rotation = signKeyRotation(GOLDEN_CHECKPOINT_LINK_HASH, key1, key2, new Date('2027-01-01T00:00:00.000Z'));
    expect(keyRotationFromMessage({ ...rotation, new_key_signature: rotation.signature })).toBeNull();
    expect(keyRotationFromMessage({ ...rotation, new_public_key_pem: rotation.public_key_pem })).toBeNull();
    expect(keyRotationFromMessage({ ...rotation, new_key_id: GOLDEN_KEY_1_ID })).toBeNull();
  });
});
