import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect } from 'nats';
import { describeConnectionFailure } from '../connections/connection-failure';
import { publishCheckpointLink } from '../ledger/checkpoint-stream';
import { natsConnectOptions, natsServerOf } from '../events/nats-connection';
import type { NatsSettings } from '../events/nats-env-config';
import { keyIdOf } from '../ledger/checkpoint';
import {
  CHECKPOINT_NEXT_KEY_FILE,
  CHECKPOINT_PRIVATE_KEY_FILE,
  CHECKPOINT_PUBLIC_KEY_FILE,
  CheckpointKeyError,
  describePublicKey,
  loadCheckpointSigningKey,
  writeAtomically,
} from '../ledger/checkpoint-key';
import { rotationLinkHash } from '../ledger/checkpoint-link';
import { exportCheckpointPublicKey } from '../ledger/checkpoint-public-key-export';
import { signKeyRotation } from '../ledger/checkpoint-rotation';
import { record, syncSeries, type SeriesContext, type SeriesPosition } from '../ledger/checkpoint-series';
import { checkpointStateFile } from '../ledger/checkpoint-state';
import { createLogger } from '../logging/logger';
import { UsageError } from './usage-error';
import { NatsUnavailableError } from './verify-ledger';

export interface RotateOptions {
  dataDir: string;
  natsUrl: string;
  nats?: NatsSettings;
  stream: string;
  subjectPrefix: string;
  /** Where the API reads the public key (LEDGER_CHECKPOINT_PUBLIC_KEY_FILE), when not beside the key. */
  publicKeyFile?: string;
  now?: () => Date;
}

/**
 * `service-fs rotate-checkpoint-key`: hands the checkpoint series over to a new key, on the worker's
 * host (it needs the data directory: the key, the signer's state file). Steps, each safe to repeat:
 *
 * 1. the new key is written to ledger-checkpoint-key.next.pem (or the one already there is used);
 * 2. a key rotation naming it, signed by the current key and co-signed by the new one, is published
 *    as the series' next link (expecting the stream's last message to be the one read, like the
 *    signer; a signer that published meanwhile is followed and the rotation signed again);
 * 3. the signer's state file records it; the new key replaces the key file, and its public half the
 *    public file. Running signers that share the data directory sign with it from their next
 *    checkpoint; others stop until they get it (checkpoint-signer.ts).
 *
 * Interrupted after step 2, running it again completes step 3.
 */
export async function rotateCheckpointKey(options: RotateOptions): Promise<string[]> {
  const keyFile = path.join(options.dataDir, CHECKPOINT_PRIVATE_KEY_FILE);
  const nextFile = path.join(options.dataDir, CHECKPOINT_NEXT_KEY_FILE);
  const key = await loadCheckpointSigningKey(keyFile).catch((error: unknown) => {
    throw error instanceof CheckpointKeyError ? new UsageError(`cannot rotate: ${error.message}`) : error;
  });
  const nc = await connect({ ...natsConnectOptions(options.nats ?? options.natsUrl), name: 'service-fs', timeout: 5000, maxReconnectAttempts: 0 }).catch(
    (error: unknown) => {
      throw new NatsUnavailableError(`cannot connect to NATS at ${natsServerOf(options.natsUrl)}: ${describeConnectionFailure(error)}`);
    },
  );
  try {
    const ctx: SeriesContext = {
      jsm: await nc.jetstreamManager(),
      stream: options.stream,
      stateFile: checkpointStateFile(options.dataDir),
      key,
      log: createLogger({ name: 'service-fs', level: 'silent' }),
    };
    let position = await syncSeries(ctx, null);
    const next = await nextKey(nextFile);
    const nextId = keyIdOf(createPublicKey(next));
    if (position.activeKeyId === nextId) {
      await install(options, nextFile, next);
      return [`ok: the rotation to key ${nextId.slice(0, 16)} was already on ${options.stream}; ${keyFile} now holds the new key`];
    }
    if (position.tip === null)
      throw new UsageError(`nothing is signed on ${options.stream} yet: there is no series to hand over; replace ${keyFile} while no worker runs instead`);
    if (position.activeKeyId !== key.keyId)
      throw new UsageError(
        `the series on ${options.stream} is signed by key ${position.activeKeyId?.slice(0, 16)}, not by the key in ${keyFile} (${key.keyId.slice(0, 16)})`,
      );
    for (let attempt = 0; attempt < 5; attempt += 1) {
      const rotation = signKeyRotation(position.tip!.hash, key.privateKey, next, (options.now ?? (() => new Date()))());
      const hash = rotationLinkHash(rotation);
      const published = await publishCheckpointLink(nc.jetstream(), options.stream, options.subjectPrefix, rotation, hash, position.expectLastSeq);
      if ('conflict' in published) {
        position = await syncSeries(ctx, position);
        continue;
      }
      const rotated: SeriesPosition = {
        tip: { kind: 'rotation', hash, rotation, oldKey: key.publicKey, newKey: createPublicKey(next) },
        tipStreamSeq: published.streamSeq,
        checkpoint: position.checkpoint,
        activeKeyId: nextId,
        expectLastSeq: published.streamSeq,
      };
      await record(ctx, rotated);
      await install(options, nextFile, next);
      return [
        `ok: key ${key.keyId.slice(0, 16)} handed the checkpoint series over to key ${nextId.slice(0, 16)} by the key rotation at stream message ${published.streamSeq} of ${options.stream}`,
        `ok: ${keyFile} holds the new key, ${path.join(options.dataDir, CHECKPOINT_PUBLIC_KEY_FILE)} its public half: give it to the API and to whoever pins the key (checkpoints before the rotation still verify with the old one)`,
      ];
    }
    throw new Error(`the checkpoint stream ${options.stream} kept moving on: try again`);
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** The new key: the one an interrupted rotation left, or a fresh one (0600, never overwritten). */
async function nextKey(nextFile: string): Promise<KeyObject> {
  const fresh = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFile(nextFile, fresh, { mode: 0o600, flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  if (((await stat(nextFile)).mode & 0o077) !== 0) throw new UsageError(`${nextFile} is readable by others: remove it and rotate again`);
  const key = createPrivateKey(await readFile(nextFile, 'utf8'));
  if (key.asymmetricKeyType !== 'ed25519') throw new UsageError(`${nextFile} is not an Ed25519 key: remove it and rotate again`);
  return key;
}

async function install({ dataDir, publicKeyFile }: RotateOptions, nextFile: string, next: KeyObject): Promise<void> {
  await rename(nextFile, path.join(dataDir, CHECKPOINT_PRIVATE_KEY_FILE));
  const besideKey = path.join(dataDir, CHECKPOINT_PUBLIC_KEY_FILE);
  await writeAtomically(besideKey, describePublicKey(createPublicKey(next)).public_key_pem, 0o644);
  // The copy the API reads, on a volume of its own (docs/deploy.md, "Key custody").
  if (publicKeyFile !== undefined && path.resolve(publicKeyFile) !== path.resolve(besideKey))
    await exportCheckpointPublicKey(createPublicKey(next), publicKeyFile);
}
