import { randomUUID, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describePublicKey } from './checkpoint-key';

/**
 * Writes the public half of the worker's signing key to `file` (LEDGER_CHECKPOINT_PUBLIC_KEY_FILE),
 * where the API reads it. Deployments give that file a volume of its own (docker-compose.production.yml:
 * `checkpoint-public-key`), so the API never mounts the worker's data directory, which holds the
 * private key. Written only when its content differs, through a temporary file and a rename, so an
 * API never reads half a key; a file already there with the same key is left alone.
 */
export async function exportCheckpointPublicKey(publicKey: KeyObject, file: string): Promise<void> {
  const pem = describePublicKey(publicKey).public_key_pem;
  const current = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (current === pem) return;
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${randomUUID()}.tmp`;
  await writeFile(temporary, pem, { mode: 0o644 });
  await rename(temporary, file);
}
