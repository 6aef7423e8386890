import { createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { headDigest, keyIdOf, signCheckpoint, type StoredCheckpointV1 } from '../../src/ledger/checkpoint';
import { verifyCheckpointChain, type StreamMessage } from '../../src/ledger/checkpoint-chain';
import { checkpointLinkHash, rotationLinkHash } from '../../src/ledger/checkpoint-link';
import { signKeyRotation } from '../../src/ledger/checkpoint-rotation';
import { canonicalJson } from '../../src/ledger/ledger-hash';

const newKey = (): KeyObject => generateKeyPairSync('ed25519').privateKey;
const k1 = newKey();
const k2 = newKey();
const k3 = newKey();
const pub = (k: KeyObject) => createPublicKey(k);
const short = (k: KeyObject) => keyIdOf(pub(k)).slice(0, 16);

let seq = 0;
/** A version 2 checkpoint of a made-up head, after `previous`. */
function checkpoint(key: KeyObject, previous: string | null) {
  seq += 1;
  const c = signCheckpoint(
    {
      head: { seq: String(seq), event_id: randomUUID(), hash: 'a'.repeat(64) },
      tree: { size: 1, root: 'b'.repeat(64) },
      entries: { size: String(seq), root: 'c'.repeat(64) },
      previous,
    },
    key,
    new Date(),
  );
  return { text: JSON.stringify(c), hash: checkpointLinkHash(c) };
}

/** A version 1 checkpoint, built by hand as the signer signed them before chaining. */
function legacy(key: KeyObject) {
  seq += 1;
  const head = { seq: String(seq), event_id: randomUUID(), hash: 'a'.repeat(64) };
  const statement = {
    v: 1 as const,
    head_digest: headDigest(head),
    tree_size: 1,
    root: 'b'.repeat(64),
    signed_at: new Date().toISOString(),
    key_id: keyIdOf(pub(key)),
  };
  const bytes = Buffer.from(`vm-tenant ledger checkpoint v1\n${canonicalJson(statement)}`);
  const c: StoredCheckpointV1 = { ...statement, signature: sign(null, bytes, key).toString('base64'), head };
  return { text: JSON.stringify(c), hash: checkpointLinkHash(c) };
}

function rotation(from: KeyObject, to: KeyObject, previous: string) {
  const r = signKeyRotation(previous, from, to, new Date());
  return { text: JSON.stringify(r), hash: rotationLinkHash(r) };
}

const onStream = (...texts: Array<{ text: string } | string>): StreamMessage[] =>
  texts.map((t, i) => ({ streamSeq: i + 1, text: typeof t === 'string' ? t : t.text }));

describe('the checkpoint chain on the stream', () => {
  test('when each checkpoint names the one before it from a genesis, then the chain has no findings', () => {
    const a = checkpoint(k1, null);
    const b = checkpoint(k1, a.hash);
    const c = checkpoint(k1, b.hash);
    const report = verifyCheckpointChain(onStream(a, b, c), 0, pub(k1));
    expect(report.findings).toEqual([]);
    expect(report.series).toMatchObject({ rotations: 0, legacy: 0, keyIds: [keyIdOf(pub(k1))] });
    expect(report.series.links.map((l) => l.streamSeq)).toEqual([1, 2, 3]);
    expect(report.checkpoints).toHaveLength(3);
  });

  test('when foreign messages sit between the links, then each is named by its stream sequence and the chain still holds', () => {
    const a = checkpoint(k1, null);
    const forged = checkpoint(k3, a.hash);
    const b = checkpoint(k1, a.hash);
    const unsigned = JSON.stringify({ ...JSON.parse(b.text), signature: undefined });
    const report = verifyCheckpointChain(onStream(a, 'hello', forged, unsigned, b), 0, pub(k1));
    expect(report.findings).toEqual([
      { defect: 'forged_checkpoint', message: 'stream message 2 is a foreign message: not JSON' },
      {
        defect: 'forged_checkpoint',
        message: `stream message 3 is a foreign message: a checkpoint signed by key ${short(k3)}, which is not a key of this series`,
      },
      { defect: 'forged_checkpoint', message: 'stream message 4 is a foreign message: not a signed checkpoint' },
    ]);
    expect(report.series.links.map((l) => l.streamSeq)).toEqual([1, 5]);
  });

  test('when a second genesis follows the series (a reset), then it is a fork naming its stream message', () => {
    const a = checkpoint(k1, null);
    const b = checkpoint(k1, a.hash);
    const again = checkpoint(k1, null);
    const next = checkpoint(k1, again.hash);
    const report = verifyCheckpointChain(onStream(a, b, again, next), 0, pub(k1));
    expect(report.findings).toEqual([
      {
        defect: 'fork',
        message: 'stream message 3 starts a new checkpoint series after 2 links of the series from stream message 1: the checkpoint history was reset',
      },
    ]);
  });

  test('when two links follow the same one, then it is a fork', () => {
    const a = checkpoint(k1, null);
    const b = checkpoint(k1, a.hash);
    const other = checkpoint(k1, a.hash);
    const report = verifyCheckpointChain(onStream(a, b, other), 0, pub(k1));
    expect(report.findings).toEqual([
      { defect: 'fork', message: 'stream message 3 follows stream message 1, which another link already follows: two histories were signed' },
    ]);
  });

  test('when the stream begins with a link whose predecessor is not there (the stream was recreated), then the checkpoints are missing', () => {
    const a = checkpoint(k1, null);
    const b = checkpoint(k1, a.hash);
    const c = checkpoint(k1, b.hash);
    const report = verifyCheckpointChain(onStream(c), 0, pub(k1));
    expect(report.findings).toEqual([
      {
        defect: 'missing_checkpoints',
        message: expect.stringMatching(
          /^stream message 1, the first link of the series on the stream, follows a link \([0-9a-f]{16}…\) that is not on the stream: the earlier checkpoints are gone/,
        ),
      },
    ]);
  });

  test('when version 1 checkpoints precede a genesis that names the last of them, then the legacy prefix is accepted; a genesis naming none of them is a reset', () => {
    const old1 = legacy(k1);
    const old2 = legacy(k1);
    const anchored = checkpoint(k1, old2.hash);
    const ok = verifyCheckpointChain(onStream(old1, old2, anchored, checkpoint(k1, anchored.hash)), 0, pub(k1));
    expect(ok.findings).toEqual([]);
    expect(ok.series).toMatchObject({ legacy: 2 });
    expect(ok.checkpoints).toHaveLength(4);

    const reset = verifyCheckpointChain(onStream(old1, old2, checkpoint(k1, null)), 0, pub(k1));
    expect(reset.findings).toEqual([
      {
        defect: 'fork',
        message: 'stream message 3 starts a new checkpoint series although the stream holds earlier checkpoints (stream message 1 on): the history was reset',
      },
    ]);
  });

  test('when the key rotates, then the series verifies with the old key pinned or the new one, and not with a key that signed none of it', () => {
    const a = checkpoint(k1, null);
    const r = rotation(k1, k2, a.hash);
    const b = checkpoint(k2, r.hash);
    const stream = onStream(a, r, b);
    for (const pinned of [k1, k2]) {
      const report = verifyCheckpointChain(stream, 0, pub(pinned));
      expect(report.findings).toEqual([]);
      expect(report.series).toMatchObject({ rotations: 1, keyIds: [keyIdOf(pub(k1)), keyIdOf(pub(k2))] });
      expect(report.checkpoints).toHaveLength(2);
    }
    expect(verifyCheckpointChain(stream, 0, pub(k3)).findings).toEqual([
      {
        defect: 'forged_checkpoint',
        message: `no link of the checkpoint series on the stream is signed by the given key ${short(k3)}; it is signed by ${short(k1)}, ${short(k2)}`,
      },
    ]);
  });

  test('when a link after a rotation is signed by the old key, or someone rotates the series to their own key, then it is refused as forged', () => {
    const a = checkpoint(k1, null);
    const r = rotation(k1, k2, a.hash);
    const stale = checkpoint(k1, r.hash);
    expect(verifyCheckpointChain(onStream(a, r, stale), 0, pub(k1)).findings).toEqual([
      {
        defect: 'forged_checkpoint',
        message: `stream message 3 is signed by key ${short(k1)}, but the series' key at that point is ${short(k2)} (a key changes only by a rotation signed with the key before it)`,
      },
    ]);
    const k4 = newKey();
    const hijack = rotation(k3, k4, a.hash);
    const theirs = checkpoint(k4, hijack.hash);
    const report = verifyCheckpointChain(onStream(a, hijack, theirs, checkpoint(k1, a.hash)), 0, pub(k1));
    expect(report.findings).toEqual([
      {
        defect: 'forged_checkpoint',
        message: expect.stringMatching(new RegExp(`^stream message 2 is signed by key ${short(k3)}, but the series' key at that point is ${short(k1)}`)),
      },
      { defect: 'forged_checkpoint', message: `stream message 3 is a foreign message: a link signed by key ${short(k4)}, which is not a key of this series` },
    ]);
    // Their checkpoint is not compared with the ledger; the series goes on from stream message 1.
    expect(report.checkpoints.map((c) => c.streamSeq)).toEqual([1, 4]);
  });

  test("when the signer's last link is not on the stream, then the checkpoints are missing; when it is, nothing is said", () => {
    const a = checkpoint(k1, null);
    const b = checkpoint(k1, a.hash);
    const local = { file: '/data/ledger-checkpoint-last.json', link: JSON.parse(b.text) as unknown };
    expect(verifyCheckpointChain(onStream(a, b), 0, pub(k1), local).findings).toEqual([]);
    const report = verifyCheckpointChain(onStream(), 0, pub(k1), local);
    expect(report.findings).toEqual([
      {
        defect: 'missing_checkpoints',
        message: expect.stringMatching(
          /^the signer's last link, the checkpoint signed at \S+ \(seq \d+\) recorded in \/data\/ledger-checkpoint-last\.json, is not on the stream: the stream was deleted, replaced or cut back$/,
        ),
      },
    ]);
    // Compared with the ledger all the same.
    expect(report.checkpoints).toHaveLength(1);
  });
});
