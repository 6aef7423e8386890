import { sign } from 'node:crypto';
import { copyFile, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { JetStreamManager, NatsConnection } from 'nats';
import { runServiceFs } from '../../src/cli/service-fs';
import type { Database } from '../../src/db/tables';
import { checkpointSubject } from '../../src/ledger/checkpoint-stream';
import { headDigest, type StoredCheckpointV1 } from '../../src/ledger/checkpoint';
import { CHECKPOINT_PUBLIC_KEY_FILE, ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import { checkpointLinkHash, linkHashOfMessage } from '../../src/ledger/checkpoint-link';
import { latestCheckpointReader } from '../../src/ledger/checkpoint-reader';
import { LedgerCheckpointSigner, type SignOutcome } from '../../src/ledger/checkpoint-signer';
import { CHECKPOINT_STATE_FILE, readCheckpointState } from '../../src/ledger/checkpoint-state';
import { canonicalJson } from '../../src/ledger/ledger-hash';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { tenantHeadsAt } from '../../src/ledger/ledger-queries';
import { tenantTree } from '../../src/ledger/tenant-tree';
import { createLogger } from '../../src/logging/logger';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { useCheckpointWorld } from '../helpers/checkpoint-world';
import { testEnv } from '../helpers/test-env';

/** The checkpoint series over a worker's life: rotation, replicas, an interrupted publish, an upgrade from unchained checkpoints. */
const world = useCheckpointWorld({ label: 'ckseries' });
let service: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let keyDir: string;
const problems: string[] = [];

beforeEach(() => {
  ({ service, nc, jsm, stream, prefix, keyDir } = world);
  problems.length = 0;
});

async function newSigner(clockOffsetMs = 0): Promise<LedgerCheckpointSigner> {
  const key = await ensureCheckpointSigningKey(keyDir);
  const log = createLogger({ name: 'signer', level: 'silent' });
  log.error = ((obj: { reason?: string }, msg: string) => void problems.push(`${msg}: ${obj.reason}`)) as never;
  return world.signer(key, { everyEntries: 1, log, now: () => new Date(Date.now() + clockOffsetMs) });
}

async function append(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await appendAuditEvent(service, newAuditEvent({ details: { i } }));
}

async function serviceFs(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const env = {
    DATABASE_URL: world.testDb.serviceUrl,
    NATS_URL: testEnv().natsUrl,
    LEDGER_CHECKPOINT_STREAM: stream,
    NATS_SUBJECT_PREFIX: prefix,
    DATA_DIR: keyDir,
    ...extraEnv,
  };
  const code = await runServiceFs(args, env, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const signedSeq = (o: SignOutcome) => ('signed' in o ? o.signed.head.seq : o);

describe('the checkpoint series', () => {
  test('when the operator rotates the key while a worker runs, then the worker signs with the new key after the rotation, and verify accepts the series with either key', async () => {
    const signer = await newSigner();
    await append(2);
    expect(signedSeq(await signer.signIfDue())).toBe('2');
    const oldPublic = path.join(keyDir, 'old.pub.pem');
    await copyFile(path.join(keyDir, CHECKPOINT_PUBLIC_KEY_FILE), oldPublic);
    const oldKey = (await ensureCheckpointSigningKey(keyDir)).publicKey;

    // Where the API reads the public key (its own volume in the deployments).
    const apiCopy = path.join(keyDir, 'api', 'ledger-checkpoint-key.pub.pem');
    const rotated = await serviceFs(['rotate-checkpoint-key'], { LEDGER_CHECKPOINT_PUBLIC_KEY_FILE: apiCopy });
    expect(rotated).toMatchObject({ code: 0, stderr: '' });
    expect(rotated.stdout).toMatch(
      /^ok: key ([0-9a-f]{16}) handed the checkpoint series over to key ([0-9a-f]{16}) by the key rotation at stream message 2 of \S+\nok: \S+ledger-checkpoint-key\.pem holds the new key/,
    );
    const newKey = await ensureCheckpointSigningKey(keyDir);
    expect((await stat(newKey.privateKeyFile)).mode & 0o777).toBe(0o600);
    expect(await readFile(apiCopy, 'utf8')).toBe(await readFile(path.join(keyDir, CHECKPOINT_PUBLIC_KEY_FILE), 'utf8'));
    expect(await readCheckpointState(path.join(keyDir, CHECKPOINT_STATE_FILE))).toMatchObject({
      stream_seq: 2,
      link: { type: 'key_rotation', new_key_id: newKey.keyId },
    });

    await append(1);
    const after = await signer.signIfDue();
    expect(after).toMatchObject({
      signed: { head: { seq: '3' }, key_id: newKey.keyId, previous: linkHashOfMessage((await jsm.streams.getMessage(stream, { seq: 2 })).string()) },
    });

    for (const pinned of [oldPublic, path.join(keyDir, CHECKPOINT_PUBLIC_KEY_FILE)]) {
      const result = await serviceFs(['verify', '--checkpoint-key', pinned]);
      expect({ pinned, code: result.code }).toEqual({ pinned, code: 0 });
      expect(result.stdout).toMatch(
        /ok: all 2 checkpoints signed by keys [0-9a-f]{16}, [0-9a-f]{16} match the ledger; the latest covers seq 3 \(signed \S+\), in one series of 3 links from its genesis \(stream message 1; 1 key rotation\)\n$/,
      );
    }
    // An API that still holds the old public key follows the rotation on the stream.
    const latest = latestCheckpointReader({ jsm: () => Promise.resolve(jsm), stream, key: () => Promise.resolve(oldKey) });
    expect(await latest()).toMatchObject({ key_id: newKey.keyId, head: { seq: '3' } });
    expect(problems).toEqual([]);
  });

  test('when two replicas sign from the same data directory at once, then one extends the series and the other follows it: one chain, no fork', async () => {
    // Clocks a little apart, so that their checkpoints of one head differ (the same statement would be stored once).
    const a = await newSigner();
    const b = await newSigner(7);
    for (let round = 0; round < 4; round += 1) {
      await append(1);
      const outcomes = await Promise.all([a.signIfDue(), b.signIfDue()]);
      expect(outcomes.filter((o) => 'signed' in o)).toHaveLength(1);
      expect(outcomes.filter((o) => 'idle' in o)).toHaveLength(1);
    }
    expect((await jsm.streams.info(stream)).state.messages).toBe(4);
    const result = await serviceFs(['verify']);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toMatch(/, in one series of 4 links from its genesis \(stream message 1\)\n$/);
    expect(problems).toEqual([]);
  });

  test('when the worker stopped after publishing but before recording the checkpoint, then at restart it adopts its own link from the stream and goes on from it', async () => {
    const signer = await newSigner();
    await append(1);
    await signer.signIfDue();
    const stateFile = path.join(keyDir, CHECKPOINT_STATE_FILE);
    const older = await readFile(stateFile, 'utf8');
    await append(1);
    await signer.signIfDue();
    await signer.stop();
    await (await import('node:fs/promises')).writeFile(stateFile, older); // as if the second record never happened

    const restarted = await newSigner();
    await append(1);
    expect(await restarted.signIfDue()).toMatchObject({
      signed: { head: { seq: '3' }, previous: linkHashOfMessage((await jsm.streams.getMessage(stream, { seq: 2 })).string()) },
    });
    expect(await readCheckpointState(stateFile)).toMatchObject({ stream_seq: 3 });
    expect((await serviceFs(['verify'])).code).toBe(0);
  });

  test('when someone replays old checkpoints of the key on the subject, then the signer, with its state file or without, goes on from its real last link, and proofs stay on the newest', async () => {
    const signer = await newSigner();
    for (let i = 0; i < 3; i += 1) {
      await append(1);
      await signer.signIfDue();
    }
    await nc.jetstream().publish(checkpointSubject(prefix), (await jsm.streams.getMessage(stream, { seq: 1 })).string());
    const third = linkHashOfMessage((await jsm.streams.getMessage(stream, { seq: 3 })).string());
    await append(1);
    expect(await signer.signIfDue()).toMatchObject({ signed: { head: { seq: '4' }, previous: third } });
    await signer.stop();

    await nc.jetstream().publish(checkpointSubject(prefix), (await jsm.streams.getMessage(stream, { seq: 2 })).string());
    await rm(path.join(keyDir, CHECKPOINT_STATE_FILE));
    const restarted = await newSigner();
    await append(1);
    expect(await restarted.signIfDue()).toMatchObject({
      signed: { head: { seq: '5' }, previous: linkHashOfMessage((await jsm.streams.getMessage(stream, { seq: 5 })).string()) },
    });
    // The API's reader does not go back to a replayed checkpoint either.
    const latest = latestCheckpointReader({ jsm: () => Promise.resolve(jsm), stream, key: async () => (await ensureCheckpointSigningKey(keyDir)).publicKey });
    expect(await latest()).toMatchObject({ head: { seq: '5' } });
    await nc.jetstream().publish(checkpointSubject(prefix), (await jsm.streams.getMessage(stream, { seq: 3 })).string());
    expect(await latest()).toMatchObject({ head: { seq: '5' } });

    const result = await serviceFs(['verify']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^ok: all 5 entries valid\nwarning: stream message 4 repeats stream message 1 \(the same link published again\): ignored\nwarning: stream message 6 repeats stream message 2 .*\nwarning: stream message 8 repeats stream message 3 .*\nok: all 5 checkpoints .*, in one series of 5 links from its genesis \(stream message 1\)\n$/,
    );
    expect(problems).toEqual([]);
  });

  test('when the stream holds version 1 checkpoints of the key, then the upgraded signer chains its genesis to the last of them and verify accepts the legacy prefix', async () => {
    const key: CheckpointSigningKey = await ensureCheckpointSigningKey(keyDir);
    await append(2);
    // What the signer published before checkpoints were chained (format v1), built by hand.
    const head = await service.selectFrom('audit_events').select(['seq', 'event_id', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    const tree = tenantTree(await tenantHeadsAt(service, head.seq));
    const statement = {
      v: 1 as const,
      head_digest: headDigest(head),
      tree_size: tree.size,
      root: tree.root,
      signed_at: new Date().toISOString(),
      key_id: key.keyId,
    };
    const v1: StoredCheckpointV1 = {
      ...statement,
      signature: sign(null, Buffer.from(`vm-tenant ledger checkpoint v1\n${canonicalJson(statement)}`), key.privateKey).toString('base64'),
      head,
    };
    await nc.jetstream().publish(checkpointSubject(prefix), JSON.stringify(v1));

    const signer = await newSigner();
    await append(1);
    expect(await signer.signIfDue()).toMatchObject({ signed: { v: 2, head: { seq: '3' }, previous: checkpointLinkHash(v1) } });
    const result = await serviceFs(['verify']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /ok: all 2 checkpoints signed by key [0-9a-f]{16} match the ledger; the latest covers seq 3 \(signed \S+\), in one series of 1 link from its genesis \(stream message 2; after 1 version 1 checkpoint\)\n$/,
    );
  });
});
