import type { KeyObject } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { readCheckpointPublicKey } from './checkpoint-key';

/**
 * The checkpoint public key as the API serves and trusts it, read from the worker's public key
 * file and read again when the file changes (a rotation installs a new one; on Kubernetes the
 * Secret's volume swaps it in): looked at no more often than `recheckMs`, so a request costs no
 * file system call. null while the file does not exist yet.
 */
export function publicKeyFileSource(
  file: string,
  { recheckMs = 5_000, now = () => Date.now() }: { recheckMs?: number; now?: () => number } = {},
): () => Promise<KeyObject | null> {
  let key: KeyObject | null = null;
  let version: string | null = null;
  let checkedAt = -Infinity;
  return async () => {
    if (key !== null && now() - checkedAt < recheckMs) return key;
    checkedAt = now();
    const seen = await stat(file).then(
      (s) => `${s.ino}:${s.size}:${s.mtimeMs}`,
      () => null,
    );
    if (seen === null || seen !== version) {
      key = await readCheckpointPublicKey(file);
      version = key === null ? null : seen;
    }
    return key;
  };
}
