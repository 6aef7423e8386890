import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { keyIdOf } from './checkpoint';

export const CHECKPOINT_PRIVATE_KEY_FILE = 'ledger-checkpoint-key.pem';
export const CHECKPOINT_PUBLIC_KEY_FILE = 'ledger-checkpoint-key.pub.pem';

export class CheckpointKeyError extends Error {
  override readonly name = 'CheckpointKeyError';
}

export interface CheckpointSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  privateKeyFile: string;
}

/** What the API publishes and a verifier needs: the public key alone. */
export interface CheckpointPublicKey {
  algorithm: 'Ed25519';
  key_id: string;
  public_key_pem: string;
}

export function describePublicKey(publicKey: KeyObject): CheckpointPublicKey {
  return { algorithm: 'Ed25519', key_id: keyIdOf(publicKey), public_key_pem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/**
 * The worker's checkpoint signing key: `<dataDir>/ledger-checkpoint-key.pem` (PKCS#8, mode 0600),
 * generated on first start, with its public half beside it for the API to publish. A private key
 * file that others can read, or that is not an Ed25519 key, stops the start: a key others may have
 * copied cannot prove anything.
 */
export async function ensureCheckpointSigningKey(dataDir: string): Promise<CheckpointSigningKey> {
  const privateKeyFile = path.join(dataDir, CHECKPOINT_PRIVATE_KEY_FILE);
  await mkdir(dataDir, { recursive: true });
  const generated = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  // 'wx': two workers starting together keep the first key written, never overwrite it.
  await writeFile(privateKeyFile, generated, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const info = await stat(privateKeyFile);
  if ((info.mode & 0o077) !== 0) {
    throw new CheckpointKeyError(`${privateKeyFile} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it, or remove it to generate a new key`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(privateKeyFile, 'utf8'));
  } catch {
    throw new CheckpointKeyError(`${privateKeyFile} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new CheckpointKeyError(`${privateKeyFile} is not an Ed25519 key`);
  const publicKey = createPublicKey(privateKey);
  await writeFile(path.join(dataDir, CHECKPOINT_PUBLIC_KEY_FILE), describePublicKey(publicKey).public_key_pem, { mode: 0o644 });
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), privateKeyFile };
}

/** Reads a public key (PEM, SPKI); null when the file does not exist yet. */
export async function readCheckpointPublicKey(file: string): Promise<KeyObject | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    throw new CheckpointKeyError(`${file} is not a PEM public key`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new CheckpointKeyError(`${file} is not an Ed25519 public key`);
  return key;
}
