import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import { UsageError } from './usage-error';

/**
 * Reads a checkpoint public key for verification: a PEM file, or the JSON the API publishes at
 * /.well-known/vm-tenant/ledger-checkpoint-key saved as is.
 */
export async function readPublicKeyFile(file: string): Promise<KeyObject> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read the checkpoint public key ${file}${code === 'ENOENT' ? ': no such file' : `: ${code ?? String(error)}`}`);
  }
  let pem = text;
  if (text.trimStart().startsWith('{')) {
    try {
      pem = String((JSON.parse(text) as { public_key_pem?: unknown }).public_key_pem ?? '');
    } catch {
      throw new UsageError(`${file} is neither a PEM public key nor the JSON of the checkpoint key route`);
    }
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw new UsageError(`${file} is not a PEM public key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UsageError(`${file} is not an Ed25519 public key`);
  return key;
}
