import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { keyIdOf } from './checkpoint';
import { CHECKPOINT_STATE_FILE, readCheckpointState } from './checkpoint-state';

export const CHECKPOINT_PRIVATE_KEY_FILE = 'ledger-checkpoint-key.pem';
export const CHECKPOINT_PUBLIC_KEY_FILE = 'ledger-checkpoint-key.pub.pem';
/** Where a rotation keeps the new key until the stream holds the rotation (see rotate-checkpoint-key). */
export const CHECKPOINT_NEXT_KEY_FILE = 'ledger-checkpoint-key.next.pem';

export class CheckpointKeyError extends Error {
  override readonly name = 'CheckpointKeyError';
}

export interface CheckpointSigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  privateKeyFile: string;
  /** This call generated the key: nothing can have been signed with it before. */
  generated: boolean;
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
 * with its public half beside it for the API to publish.
 *
 * It is generated only on a first start: when the file is missing but the signer's state file
 * beside it records a checkpoint, the key was lost, and a new one would start a new series that
 * nobody could tell from a reset: the start stops with a message instead. (A missing key while the
 * stream holds checkpoints is caught by the signer, which refuses to sign with a key that signed
 * none of them: see checkpoint-series.ts.) A private key file that others can read, or that is not
 * an Ed25519 key, stops the start too. The public file is written when missing or when it does
 * not match the private key (after a rotation), never otherwise.
 */
export async function ensureCheckpointSigningKey(dataDir: string): Promise<CheckpointSigningKey> {
  const privateKeyFile = path.join(dataDir, CHECKPOINT_PRIVATE_KEY_FILE);
  await mkdir(dataDir, { recursive: true });
  let generated = false;
  if (!(await exists(privateKeyFile))) {
    const state = await readCheckpointState(path.join(dataDir, CHECKPOINT_STATE_FILE)).catch(() => 'unreadable' as const);
    if (state !== null) {
      const what =
        state === 'unreadable' ? 'an unreadable state' : `the last checkpoint this signer signed (stream ${state.stream}, message ${state.stream_seq})`;
      throw new CheckpointKeyError(
        `${privateKeyFile} is missing, but ${path.join(dataDir, CHECKPOINT_STATE_FILE)} records ${what}: checkpoints exist, so a new key would start a new series. ` +
          'Restore the key file from its backup; if it is lost for good, see "Lost signing key" in docs/audit-ledger.md',
      );
    }
    const fresh = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    // 'wx': two workers starting together keep the first key written, never overwrite it.
    generated = await writeFile(privateKeyFile, fresh, { mode: 0o600, flag: 'wx' }).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
        return false;
      },
    );
  }
  const privateKey = await loadPrivateKey(privateKeyFile);
  const publicKey = createPublicKey(privateKey);
  await ensurePublicKeyFile(path.join(dataDir, CHECKPOINT_PUBLIC_KEY_FILE), publicKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), privateKeyFile, generated };
}

/** Reads an existing signing key file (never generates one): the signer re-reads it after a rotation. */
export async function loadCheckpointSigningKey(privateKeyFile: string): Promise<CheckpointSigningKey> {
  const privateKey = await loadPrivateKey(privateKeyFile);
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), privateKeyFile, generated: false };
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return false;
      throw error;
    },
  );
}

async function loadPrivateKey(privateKeyFile: string): Promise<KeyObject> {
  let info;
  try {
    info = await stat(privateKeyFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new CheckpointKeyError(`${privateKeyFile} does not exist`);
    throw error;
  }
  if ((info.mode & 0o077) !== 0) {
    throw new CheckpointKeyError(
      `${privateKeyFile} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it (a key others may have copied proves nothing: rotate it if they did)`,
    );
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(await readFile(privateKeyFile, 'utf8'));
  } catch {
    throw new CheckpointKeyError(`${privateKeyFile} is not a PEM private key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new CheckpointKeyError(`${privateKeyFile} is not an Ed25519 key`);
  return privateKey;
}

async function ensurePublicKeyFile(file: string, publicKey: KeyObject): Promise<void> {
  const pem = describePublicKey(publicKey).public_key_pem;
  const current = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (current === pem) return;
  await writeAtomically(file, pem, 0o644);
}

/** Writes a file whole or not at all: a temporary file beside it, renamed over it. */
export async function writeAtomically(file: string, content: string, mode: number): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, content, { mode });
  await rename(temporary, file);
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
