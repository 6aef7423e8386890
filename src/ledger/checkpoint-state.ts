import { randomBytes } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StoredCheckpoint } from './checkpoint';
import type { StoredKeyRotation } from './checkpoint-rotation';

/**
 * The signer's memory of its series, kept beside its key (`DATA_DIR/ledger-checkpoint-last.json`):
 * the last link it signed or adopted, where the stream stored it, and the last checkpoint (the
 * same, unless the last link is a key rotation). Nothing in it is secret; it is what makes the
 * signer refuse a stream that lost its checkpoints (deleted, recreated, cut back) instead of
 * starting a new series on it, whatever the stream says. Written after each publish, atomically
 * (a temporary file renamed over it), so it is never torn and never ahead of the stream.
 */
export const CHECKPOINT_STATE_FILE = 'ledger-checkpoint-last.json';

export interface CheckpointState {
  /** The stream the link was published to. */
  stream: string;
  /** Its sequence number in that stream. */
  stream_seq: number;
  link: StoredCheckpoint | StoredKeyRotation;
  /** The last checkpoint of the series (the link itself when it is one). */
  checkpoint: StoredCheckpoint | null;
}

export class CheckpointStateError extends Error {
  override readonly name = 'CheckpointStateError';
}

export function checkpointStateFile(dataDir: string): string {
  return path.join(dataDir, CHECKPOINT_STATE_FILE);
}

/** The recorded state; null when there is no state file. */
export async function readCheckpointState(file: string): Promise<CheckpointState | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let state: Partial<CheckpointState>;
  try {
    state = JSON.parse(text) as Partial<CheckpointState>;
  } catch {
    throw new CheckpointStateError(`${file} is not JSON: restore it from a backup, or see "Recovering the checkpoint series" in docs/audit-ledger.md`);
  }
  if (typeof state.stream !== 'string' || !Number.isSafeInteger(state.stream_seq) || state.link === null || typeof state.link !== 'object') {
    throw new CheckpointStateError(`${file} is not a checkpoint state (stream, stream_seq, link)`);
  }
  return { stream: state.stream, stream_seq: state.stream_seq!, link: state.link, checkpoint: state.checkpoint ?? null };
}

export async function writeCheckpointState(file: string, state: CheckpointState): Promise<void> {
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o644);
  try {
    await handle.writeFile(`${JSON.stringify(state)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
