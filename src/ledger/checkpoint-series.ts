import type { KeyObject } from 'node:crypto';
import type { JetStreamManager } from 'nats';
import type { Logger } from '../logging/logger';
import { checkpointStreamBounds, readCheckpointMessage } from './checkpoint-stream';
import type { StoredCheckpoint } from './checkpoint';
import { linkHashOfMessage, messageOf, parseLinkMessage, parseLinkValue, signerOf, type Link } from './checkpoint-link';
import { CheckpointStateError, readCheckpointState, writeCheckpointState, type CheckpointState } from './checkpoint-state';

/**
 * Where the signer stands in its checkpoint series, and the rules by which it learns it. The
 * signer's own record (its state file, checkpoint-state.ts) outranks the stream:
 *
 * 1. With a record: the recorded link must still be at its place in the stream (else
 *    `stream_lost`: the stream was deleted, recreated or cut back; refuse rather than start a new
 *    series on it). Later links that extend it, signed by the series' key at that point (another
 *    replica with the same key, a rotation), are adopted; a link signed by the series' key that does
 *    not extend it is a `fork` (someone else signs with the key); anything else on the subject is a
 *    foreign message, logged and ignored.
 * 2. Without a record (a first start, or a data directory that does not persist): the newest link
 *    signed by this key, or a rotation to it, is adopted from the stream (foreign messages skipped),
 *    so an upgraded signer continues after its version 1 checkpoints. If the stream holds only
 *    checkpoints of other keys, the key was lost or replaced (`key_lost`); if this key was rotated
 *    away from (`key_retired`). An empty stream starts a new series, which is logged.
 *
 * A state file that cannot be read is `state_unreadable`. A refusal is a CheckpointSeriesRefusal: the signer stops; the operator action is in
 * docs/audit-ledger.md ("Recovering the checkpoint series").
 */
export type RefusalCode = 'stream_lost' | 'key_lost' | 'key_retired' | 'fork' | 'state_unreadable';

export class CheckpointSeriesRefusal extends Error {
  override readonly name = 'CheckpointSeriesRefusal';
  constructor(
    readonly code: RefusalCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SeriesPosition {
  /** The series' last link; null: nothing signed yet, the next checkpoint is a genesis. */
  tip: Link | null;
  /** Where the stream stores the tip (0: nowhere yet). */
  tipStreamSeq: number;
  /** The last checkpoint: what the ledger must still extend. */
  checkpoint: StoredCheckpoint | null;
  /** The key that signs the next link (the tip's signer, or a rotation's new key); null before a genesis. */
  activeKeyId: string | null;
  /** The subject's last stream sequence as read: the next publish expects it unchanged. */
  expectLastSeq: number;
}

export interface SeriesContext {
  jsm: JetStreamManager;
  stream: string;
  stateFile: string;
  key: { keyId: string; publicKey: KeyObject; generated: boolean };
  log: Logger;
}

const describeLink = (link: Link): string =>
  link.kind === 'rotation'
    ? `the key rotation signed at ${link.rotation.signed_at}`
    : `the checkpoint signed at ${link.checkpoint.signed_at} (seq ${link.checkpoint.head.seq})`;

const RECOVERY = 'see "Recovering the checkpoint series" in docs/audit-ledger.md';

/** The position from the record or, without one, from the stream. `known`: the position the signer holds in memory. */
export async function syncSeries(ctx: SeriesContext, known: SeriesPosition | null): Promise<SeriesPosition> {
  if (known?.tip) return followStream(ctx, known);
  const state = await readCheckpointState(ctx.stateFile).catch((error: unknown) => {
    if (error instanceof CheckpointStateError) throw new CheckpointSeriesRefusal('state_unreadable', `${error.message}`);
    throw error;
  });
  if (state) return followStream(ctx, positionFromState(ctx, state));
  return adoptFromStream(ctx);
}

function positionFromState(ctx: SeriesContext, state: CheckpointState): SeriesPosition {
  if (state.stream !== ctx.stream) {
    throw new CheckpointSeriesRefusal(
      'stream_lost',
      `${ctx.stateFile} records the series on stream ${state.stream}, but the signer publishes to ${ctx.stream}: ${RECOVERY}`,
    );
  }
  const ring = new Map([[ctx.key.keyId, ctx.key.publicKey]]);
  const parsed = parseLinkValue(state.link, ring);
  if ('foreign' in parsed) throw new CheckpointSeriesRefusal('key_lost', `${ctx.stateFile} holds ${parsed.foreign}: the key file was replaced; ${RECOVERY}`);
  const checkpointParsed =
    state.checkpoint === null
      ? null
      : parseLinkValue(state.checkpoint, parsed.link.kind === 'rotation' ? new Map([[parsed.link.rotation.key_id, parsed.link.oldKey], ...ring]) : ring);
  const checkpoint =
    checkpointParsed !== null && 'link' in checkpointParsed && checkpointParsed.link.kind !== 'rotation' ? checkpointParsed.link.checkpoint : null;
  return { tip: parsed.link, tipStreamSeq: state.stream_seq, checkpoint, activeKeyId: activeAfter(parsed.link), expectLastSeq: state.stream_seq };
}

const previousOf = (link: Link): string | null =>
  link.kind === 'rotation' ? link.rotation.previous : link.kind === 'checkpoint' ? link.checkpoint.previous : null;

const activeAfter = (link: Link): string => (link.kind === 'rotation' ? link.rotation.new_key_id : signerOf(link));

/** Rule 1: the tip must be where it was stored; what extends it is adopted. */
async function followStream(ctx: SeriesContext, from: SeriesPosition): Promise<SeriesPosition> {
  const tip = from.tip!;
  const bounds = await checkpointStreamBounds(ctx.jsm, ctx.stream);
  const stored = bounds === null ? null : await readCheckpointMessage(ctx.jsm, ctx.stream, from.tipStreamSeq);
  // The tip was verified when it was signed or adopted: the stored message must be the same statement.
  if (stored === null || linkHashOfMessage(stored) !== tip.hash) {
    throw new CheckpointSeriesRefusal(
      'stream_lost',
      `the signer's last link, ${describeLink(tip)}, is not at message ${from.tipStreamSeq} of checkpoint stream ${ctx.stream}` +
        `${bounds === null ? ' (the stream does not exist)' : bounds.messages === 0 ? ' (the stream is empty)' : ` (the stream holds messages ${bounds.firstSeq}-${bounds.lastSeq})`}: ` +
        `the stream was deleted, recreated or cut back. Refusing to start a new checkpoint series; ${RECOVERY}`,
    );
  }
  let position: SeriesPosition = { ...from, expectLastSeq: bounds!.lastSeq };
  let adopted = false;
  for (let seq = from.tipStreamSeq + 1; seq <= bounds!.lastSeq; seq += 1) {
    const text = await readCheckpointMessage(ctx.jsm, ctx.stream, seq);
    if (text === null) continue;
    const parsed = parseLinkMessage(text, ringFor(ctx, position.tip!));
    if ('foreign' in parsed) {
      ctx.log.warn({ stream: ctx.stream, stream_seq: seq, reason: parsed.foreign }, 'ignoring a foreign message on the checkpoint subject');
      continue;
    }
    const { link } = parsed;
    if (link.kind === 'legacy' || link.hash === position.tip!.hash) continue;
    const previous = previousOf(link);
    const signedByActive = signerOf(link) === position.activeKeyId;
    if (previous === position.tip!.hash && signedByActive) {
      position = {
        ...position,
        tip: link,
        tipStreamSeq: seq,
        checkpoint: link.kind === 'rotation' ? position.checkpoint : link.checkpoint,
        activeKeyId: activeAfter(link),
      };
      adopted = true;
    } else if (signedByActive && previous !== null && previous === previousOf(position.tip!)) {
      throw new CheckpointSeriesRefusal(
        'fork',
        `stream message ${seq} of ${ctx.stream} is signed by the series' key and follows the same link as ${describeLink(position.tip!)}: another signer with this key signed another history; ${RECOVERY}`,
      );
    } else {
      // A replayed older link, or a link of another key: not the series' next link.
      ctx.log.warn({ stream: ctx.stream, stream_seq: seq }, 'ignoring a link on the checkpoint subject that does not extend the series');
    }
  }
  if (adopted) await record(ctx, position);
  return position;
}

/** The keys a link after `tip` may be signed with: this signer's, and the tip's active key (a rotation's new key). */
function ringFor(ctx: SeriesContext, tip: Link): Map<string, KeyObject> {
  const ring = new Map([[ctx.key.keyId, ctx.key.publicKey]]);
  if (tip.kind === 'rotation') {
    ring.set(tip.rotation.key_id, tip.oldKey);
    ring.set(tip.rotation.new_key_id, tip.newKey);
  }
  return ring;
}

/** Rule 2: no record; the newest link of this key on the stream, or a new series on an empty one. */
async function adoptFromStream(ctx: SeriesContext): Promise<SeriesPosition> {
  const bounds = await checkpointStreamBounds(ctx.jsm, ctx.stream);
  const empty: SeriesPosition = { tip: null, tipStreamSeq: 0, checkpoint: null, activeKeyId: null, expectLastSeq: bounds?.lastSeq ?? 0 };
  if (bounds === null || bounds.messages === 0) return empty;
  const ring = new Map([[ctx.key.keyId, ctx.key.publicKey]]);
  const otherKeys = new Set<string>();
  // Backwards from the end: the newest link of this key, unless an older one signs a higher head
  // (someone who may publish replayed an old link of the key), up to its predecessor; then, for a
  // rotation to this key, on to the checkpoint before it.
  let found: { link: Link; seq: number } | null = null;
  let wanted: string | null = null;
  let checkpoint: StoredCheckpoint | null = null;
  let settled = false;
  for (let seq = bounds.lastSeq; seq >= bounds.firstSeq && checkpoint === null; seq -= 1) {
    const text = await readCheckpointMessage(ctx.jsm, ctx.stream, seq);
    if (text === null) continue;
    const parsed = parseLinkMessage(text, ring);
    if ('foreign' in parsed) {
      if (parsed.keyId !== undefined && found === null) otherKeys.add(parsed.keyId);
      continue;
    }
    const { link } = parsed;
    if (found !== null && link.hash === wanted) {
      if (found.link.kind !== 'rotation') {
        checkpoint = found.link.checkpoint;
        break;
      }
      settled = true;
      if (link.kind === 'rotation') {
        ring.set(link.rotation.key_id, link.oldKey); // the checkpoint before it is the old key's
        wanted = link.rotation.previous;
      } else {
        checkpoint = link.checkpoint;
      }
      continue;
    }
    const ours = link.kind === 'rotation' ? link.rotation.new_key_id === ctx.key.keyId : signerOf(link) === ctx.key.keyId;
    if (found === null && link.kind === 'rotation' && link.rotation.key_id === ctx.key.keyId) {
      throw new CheckpointSeriesRefusal(
        'key_retired',
        `this key (${ctx.key.keyId.slice(0, 16)}) was rotated away from by stream message ${seq} of ${ctx.stream} (new key ${link.rotation.new_key_id.slice(0, 16)}): install the new key; ${RECOVERY}`,
      );
    }
    if (settled) continue;
    // A checkpoint of this key after a rotation to it, or one of a higher head: the later link.
    const later =
      found !== null &&
      link.kind !== 'rotation' &&
      (found.link.kind === 'rotation' || BigInt(link.checkpoint.head.seq) > BigInt(found.link.checkpoint.head.seq));
    if (!ours || (found !== null && !later)) continue;
    found = { link, seq };
    if (link.kind === 'rotation') {
      ring.set(link.rotation.key_id, link.oldKey);
      wanted = link.rotation.previous;
    } else {
      wanted = link.kind === 'checkpoint' ? link.checkpoint.previous : null;
    }
  }
  if (found !== null && found.link.kind !== 'rotation' && checkpoint === null) checkpoint = found.link.checkpoint;
  if (found === null) {
    if (otherKeys.size === 0) return empty;
    const others = [...otherKeys].map((k) => k.slice(0, 16)).join(', ');
    throw new CheckpointSeriesRefusal(
      'key_lost',
      `checkpoint stream ${ctx.stream} holds checkpoints signed by key ${others}, none by this key (${ctx.key.keyId.slice(0, 16)}) and no rotation to it` +
        `${ctx.key.generated ? ', which was generated at this start' : ''}: the signing key file was lost or replaced. Restore it, or ${RECOVERY}`,
    );
  }
  const position: SeriesPosition = {
    tip: found.link,
    tipStreamSeq: found.seq,
    checkpoint,
    activeKeyId: activeAfter(found.link),
    expectLastSeq: bounds.lastSeq,
  };
  ctx.log.info(
    { stream: ctx.stream, stream_seq: found.seq, kind: found.link.kind },
    'ledger checkpoint signer continues the series from the stream (no state file)',
  );
  await record(ctx, position);
  return position;
}

/** Writes the position to the state file. */
export async function record(ctx: SeriesContext, position: SeriesPosition): Promise<void> {
  if (!position.tip) return;
  await writeCheckpointState(ctx.stateFile, {
    stream: ctx.stream,
    stream_seq: position.tipStreamSeq,
    link: messageOf(position.tip),
    checkpoint: position.checkpoint,
  });
}
