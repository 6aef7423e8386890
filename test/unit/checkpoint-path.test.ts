import { createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { signCheckpoint, withoutHead, type SignedCheckpoint } from '../../src/ledger/checkpoint';
import { verifyCheckpointPath } from '../../src/ledger/checkpoint-path';
import { signKeyRotation, type StoredKeyRotation } from '../../src/ledger/checkpoint-rotation';
import { tenantLinkHash } from '../../src/ledger/tenant-link';
import { extendWitnessLog, openWitnessLog } from '../../src/ledger/witness-log';

/** Key rotations and forged links on the tenant's side of the series (checkpoint-path.ts, witness-log.ts), without a stack. */
const newKey = (): KeyObject => generateKeyPairSync('ed25519').privateKey;
const oldKey = newKey();
const nextKey = newKey();
const intruder = newKey();
const pub = (k: KeyObject) => createPublicKey(k);

let seq = 0;
const at = (offsetMs: number) => new Date(Date.UTC(2026, 11, 6) + offsetMs);
function checkpoint(key: KeyObject, previous: string | null): SignedCheckpoint {
  seq += 1;
  return withoutHead(
    signCheckpoint(
      {
        head: { seq: String(seq), event_id: randomUUID(), hash: 'a'.repeat(64) },
        tree: { size: 1, root: 'b'.repeat(64) },
        entries: { size: String(seq), root: 'c'.repeat(64) },
        previous,
      },
      key,
      at(seq * 1000),
    ),
  );
}
const rotate = (from: KeyObject, to: KeyObject, previous: SignedCheckpoint): StoredKeyRotation =>
  signKeyRotation(tenantLinkHash(previous), from, to, at(seq * 1000 + 500));

describe('a newer checkpoint against a prior one', () => {
  test('when the series rotates its key in between, then the path holds and names both keys', () => {
    const prior = checkpoint(oldKey, null);
    const rotation = rotate(oldKey, nextKey, prior);
    const later = checkpoint(nextKey, tenantLinkHash(rotation));
    const outcome = verifyCheckpointPath(prior, later, [rotation, later], pub(oldKey));
    expect(outcome).toMatchObject({ ok: true, links: 2 });
    expect(outcome.ok && outcome.keys.map((k) => k.export({ type: 'spki', format: 'pem' }))).toEqual(
      [pub(oldKey), pub(nextKey)].map((k) => k.export({ type: 'spki', format: 'pem' })),
    );
  });

  test('when a rotation to another key is not signed by the series key, then the later checkpoint is not reached: a fork', () => {
    const prior = checkpoint(oldKey, null);
    const forgedRotation = signKeyRotation(tenantLinkHash(prior), intruder, nextKey, at(seq * 1000 + 500));
    const later = checkpoint(nextKey, tenantLinkHash(forgedRotation));
    const outcome = verifyCheckpointPath(prior, later, [forgedRotation, later], pub(oldKey));
    expect(outcome).toMatchObject({ ok: false, defect: 'fork' });
  });

  test('when a checkpoint after the prior one is signed by a key the series never handed over to, then it is not reached', () => {
    const prior = checkpoint(oldKey, null);
    const later = checkpoint(intruder, tenantLinkHash(prior));
    expect(verifyCheckpointPath(prior, later, [later], pub(oldKey))).toMatchObject({ ok: false, defect: 'fork' });
  });

  test('when two links signed by the key follow the prior checkpoint, then that is a fork, whichever the tenant was shown', () => {
    const prior = checkpoint(oldKey, null);
    const a = checkpoint(oldKey, tenantLinkHash(prior));
    const b = checkpoint(oldKey, tenantLinkHash(prior));
    expect(verifyCheckpointPath(prior, b, [a, b], pub(oldKey))).toMatchObject({
      ok: false,
      defect: 'fork',
      message: expect.stringMatching(/^2 links signed by key \S+ follow the link/),
    });
  });

  test('when the prior checkpoint is not signed by the pinned key, then it is a forged checkpoint', () => {
    const prior = checkpoint(intruder, null);
    expect(verifyCheckpointPath(prior, prior, [], pub(oldKey))).toMatchObject({ ok: false, defect: 'forged_checkpoint' });
  });
});

describe('a witness log', () => {
  test('when the links extend the log across a rotation, then they are appended; a link of another history is refused and nothing is appended', () => {
    const a = checkpoint(oldKey, null);
    const b = checkpoint(oldKey, tenantLinkHash(a));
    const opened = openWitnessLog([a, b], pub(oldKey));
    if ('fork' in opened) throw new Error(opened.fork);
    const rotation = rotate(oldKey, nextKey, b);
    const c = checkpoint(nextKey, tenantLinkHash(rotation));
    const extended = extendWitnessLog(opened.log, [rotation, c]);
    if ('fork' in extended) throw new Error(extended.fork);
    expect(extended.added).toEqual([rotation, c]);
    expect(extended.log.tip?.hash).toBe(tenantLinkHash(c));

    const other = checkpoint(nextKey, tenantLinkHash(b)); // signed by the new key, but after b: another history
    expect(extendWitnessLog(extended.log, [other])).toEqual({
      fork: expect.stringMatching(/^1 of the links given do not extend the witnessed series from its tip/),
    });
  });
});
