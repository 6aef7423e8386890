import type { KeyObject } from 'node:crypto';
import type { JetStreamManager } from 'nats';
import { checkpointStreamBounds, readCheckpointMessage } from './checkpoint-stream';
import { keyIdOf, type StoredCheckpoint } from './checkpoint';
import { linkHashOfMessage, parseLinkMessage } from './checkpoint-link';

export interface CheckpointReaderOptions {
  jsm: () => Promise<JetStreamManager>;
  stream: string;
  /** The key the reader trusts (the worker's public key file); null while there is none. */
  key: () => Promise<KeyObject | null>;
  /** How far back the first read looks for a checkpoint of the key (foreign messages in between are skipped). */
  maxScan?: number;
}

/**
 * The newest checkpoint on the stream that the trusted key signed, or a key it rotated to: what
 * the API proves tenants' entries against. A foreign message on the subject (unsigned, badly
 * signed, another key) is skipped, so one cannot stop proofs; the newest valid checkpoint keeps
 * answering. The first call looks back from the stream's end; later calls read only the messages
 * added since, following key rotations (a rotation signed by the current key, co-signed by the new
 * one, makes the new one current).
 */
export function latestCheckpointReader(options: CheckpointReaderOptions): () => Promise<StoredCheckpoint | null> {
  let read = 0;
  let pinnedId: string | null = null;
  let keys = new Map<string, KeyObject>();
  let current: string | null = null;
  let latest: StoredCheckpoint | null = null;

  const take = (text: string): void => {
    const parsed = parseLinkMessage(text, keys);
    if (!('link' in parsed)) return;
    const { link } = parsed;
    if (link.kind === 'rotation') {
      if (link.rotation.key_id !== current) return;
      keys = new Map([...keys, [link.rotation.new_key_id, link.newKey]]);
      current = link.rotation.new_key_id;
    } else if (link.checkpoint.key_id === current && (latest === null || BigInt(link.checkpoint.head.seq) >= BigInt(latest.head.seq))) {
      // Never back: an older checkpoint published again (a replay) does not replace a newer one.
      latest = link.checkpoint;
    }
  };

  return async () => {
    const key = await options.key();
    if (key === null) return null;
    const jsm = await options.jsm();
    const bounds = await checkpointStreamBounds(jsm, options.stream);
    if (bounds === null) {
      read = 0;
      return null;
    }
    if (pinnedId !== keyIdOf(key) || bounds.lastSeq < read) {
      // First read (or a new key file, or a stream that was recreated): from the newest message of the key back.
      pinnedId = keyIdOf(key);
      keys = new Map([[pinnedId, key]]);
      current = pinnedId;
      latest = null;
      read = Math.max(bounds.firstSeq, bounds.lastSeq - (options.maxScan ?? 10_000) + 1) - 1;
      // Back to the newest link of the key and the link it follows (so that a replayed older link
      // after it is seen as such); the forward read below then takes the newest checkpoint.
      const floor = read;
      let wanted: string | null | undefined;
      for (let seq = bounds.lastSeq; seq >= bounds.firstSeq && seq > floor; seq -= 1) {
        const text = await readCheckpointMessage(jsm, options.stream, seq);
        if (text === null) continue;
        if (wanted !== undefined && wanted !== null && linkHashOfMessage(text) === wanted) {
          read = seq - 1;
          break;
        }
        const parsed = parseLinkMessage(text, keys);
        if (!('link' in parsed)) continue;
        const { link } = parsed;
        const ofKey =
          link.kind === 'rotation' ? link.rotation.key_id === pinnedId || link.rotation.new_key_id === pinnedId : link.checkpoint.key_id === pinnedId;
        if (ofKey && wanted === undefined)
          wanted = link.kind === 'rotation' ? link.rotation.previous : link.kind === 'checkpoint' ? link.checkpoint.previous : null;
      }
    }
    for (let seq = read + 1; seq <= bounds.lastSeq; seq += 1) {
      const text = await readCheckpointMessage(jsm, options.stream, seq);
      if (text !== null) take(text);
      read = seq;
    }
    return latest;
  };
}
