import { createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { stat, chmod, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { JetStreamManager, NatsConnection } from 'nats';
import { CHECKPOINT_KEY_PATH } from '../../src/api/routes/checkpoint-key.routes';
import { runServiceFs } from '../../src/cli/service-fs';
import type { Database } from '../../src/db/tables';
import { checkpointSubject, publishCheckpoint, readLastCheckpointText } from '../../src/ledger/checkpoint-stream';
import { createLogger } from '../../src/logging/logger';
import { keyIdOf, signCheckpoint, type StoredCheckpointV2 } from '../../src/ledger/checkpoint';
import { linkHashOfMessage } from '../../src/ledger/checkpoint-link';
import { entryTreeHeadsAt } from '../../src/ledger/entry-tree.repository';
import { CHECKPOINT_PUBLIC_KEY_FILE, ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import type { LedgerCheckpointSigner, SignOutcome } from '../../src/ledger/checkpoint-signer';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { tenantHeadsAt } from '../../src/ledger/ledger-queries';
import { tenantTree } from '../../src/ledger/tenant-tree';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { useCheckpointWorld } from '../helpers/checkpoint-world';
import { rechainFrom, shiftUpFrom, withTriggersDisabled } from '../helpers/ledger-tampering';
import { serveApi } from '../helpers/api-server';
import { testConfig, testEnv } from '../helpers/test-env';

const world = useCheckpointWorld({ label: 'checkpoint' });
let service: Kysely<Database>;
let admin: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let keyDir: string;
let key: CheckpointSigningKey;
let signer: LedgerCheckpointSigner;
const errors: string[] = [];

beforeEach(async () => {
  ({ service, nc, jsm, stream, prefix, keyDir } = world);
  admin = world.testDb.adminDb();
  key = await ensureCheckpointSigningKey(keyDir);
  errors.length = 0;
  const log = createLogger({ name: 'signer', level: 'silent' });
  log.error = ((obj: { reason?: string }, msg: string) => void errors.push(`${msg}: ${obj.reason}`)) as never;
  // Cadence of 3 entries; the time trigger is out of the way so each test decides when to sign.
  signer = world.signer(key, { log });
});

async function append(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await appendAuditEvent(service, newAuditEvent({ details: { i } }));
}

/** Appends `count` entries and lets the signer sign after every third. */
async function appendAndSign(count: number): Promise<SignOutcome[]> {
  const outcomes: SignOutcome[] = [];
  for (let i = 0; i < count; i += 1) {
    await append(1);
    outcomes.push(await signer.signIfDue());
  }
  return outcomes;
}

/** What a key holder who does not check signs: the ledger as it is now, chained to the stream's last message. */
async function signAsItIs(privateKey: KeyObject, tree?: { size: number; root: string }): Promise<StoredCheckpointV2> {
  const head = await service.selectFrom('audit_events').select(['seq', 'event_id', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
  const entries = (await entryTreeHeadsAt(service, [head.seq])).get(head.seq)!;
  const last = await readLastCheckpointText(jsm, stream, prefix);
  const previous = last === null ? null : linkHashOfMessage(last);
  return signCheckpoint({ head, tree: tree ?? tenantTree(await tenantHeadsAt(service, head.seq)), entries, previous }, privateKey, new Date());
}

async function verify(args: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const env = { DATABASE_URL: world.testDb.serviceUrl, NATS_URL: testEnv().natsUrl, LEDGER_CHECKPOINT_STREAM: stream, DATA_DIR: keyDir };
  const code = await runServiceFs(['verify', ...args], env, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('signed ledger checkpoints', () => {
  test('when the worker signs every third entry and nothing is changed, then verify checks the chain, the series and every checkpoint and exits 0', async () => {
    const outcomes = await appendAndSign(7);
    expect(outcomes.map((o) => ('signed' in o ? o.signed.head.seq : null))).toEqual([null, null, '3', null, null, '6', null]);

    const result = await verify();
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^ok: all 7 entries valid\nok: all 2 checkpoints signed by key [0-9a-f]{16} match the ledger; the latest covers seq 6 \(signed \S+\), in one series of 2 links from its genesis \(stream message 1\)\n$/,
    );
  });

  test('when fewer entries than the cadence wait longer than the time cadence, then the signer signs them', async () => {
    let now = new Date('2026-11-27T12:00:00.000Z');
    const log = createLogger({ name: 'signer', level: 'silent' });
    const timed = world.signer(key, { everyEntries: 100, everyMs: 10_000, log, now: () => now });
    await append(2);
    expect(await timed.signIfDue()).toEqual({ idle: true });
    now = new Date(now.getTime() + 9_999);
    expect(await timed.signIfDue()).toEqual({ idle: true });
    now = new Date(now.getTime() + 1);
    expect(await timed.signIfDue()).toMatchObject({ signed: { head: { seq: '2' }, signed_at: '2026-11-27T12:00:10.000Z' } });
    // Nothing new: no checkpoint, however long it waits.
    now = new Date(now.getTime() + 60_000);
    expect(await timed.signIfDue()).toEqual({ idle: true });
  });

  test('when an entry with a lower seq is still uncommitted, then the signer signs nothing past it; once it commits, the checkpoint covers it', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let inserted!: () => void;
    const appended = new Promise<void>((resolve) => (inserted = resolve));
    const held = service.transaction().execute(async (trx) => {
      await appendAuditEvent(trx, newAuditEvent({ tenant_id: 'late-tenant' }));
      inserted();
      await released;
    });
    await appended;
    await append(3); // seq 2-4, committed before seq 1
    expect(await signer.signIfDue()).toEqual({ idle: true });

    release();
    await held;
    const outcome = await signer.signIfDue();
    expect(outcome).toMatchObject({ signed: { head: { seq: '4' }, tree_size: 4 } });
    expect((await verify()).code).toBe(0);
  });

  test('when the checkpoint stream is asked to delete or purge a message, or to drop those refusals, then NATS refuses', async () => {
    await appendAndSign(3);
    const info = await jsm.streams.info(stream);
    expect(info.config).toMatchObject({ deny_delete: true, deny_purge: true, allow_rollup_hdrs: false, max_age: 0, max_msgs: -1 });
    await expect(jsm.streams.deleteMessage(stream, 1)).rejects.toThrow();
    await expect(jsm.streams.deleteMessage(stream, 1, false)).rejects.toThrow();
    await expect(jsm.streams.purge(stream)).rejects.toThrow();
    await expect(jsm.streams.update(stream, { ...info.config, deny_delete: false, deny_purge: false })).rejects.toThrow();
    expect((await jsm.streams.info(stream)).state.messages).toBe(1);
  });

  test('when an owner cuts off the newest entries, then the chain alone still verifies but verify names the truncation', async () => {
    await appendAndSign(6);
    await withTriggersDisabled(admin, async (trx) => void (await sql`delete from audit_events where seq > 4`.execute(trx)));

    expect(await verify(['--chain-only'])).toEqual({ code: 0, stdout: 'ok: all 4 entries valid\n', stderr: '' });
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^ok: all 4 entries valid\nbad: truncation: the ledger ends at seq 4, but the checkpoint signed at \S+ \(seq 6\) covers seq 6: entries were cut off\n$/,
    );
  });

  test('when an owner rewrites an entry and recomputes every hash after it, then verify names the rewrite and the signer withholds the next checkpoint', async () => {
    await appendAndSign(6);
    await withTriggersDisabled(admin, async (trx) => {
      await sql`update audit_events set details = '{"i":99}'::jsonb where seq = 2`.execute(trx);
      await rechainFrom(trx, 2);
    });

    expect((await verify(['--chain-only'])).code).toBe(0);
    const result = await verify();
    expect(result.code).toBe(1);
    // Entry 2 is its tenant's only entry: the signed heads (seq 3 and 6, other tenants) keep their
    // hashes, and the signed trees of chain heads no longer match.
    expect(result.stdout).toMatch(/bad: rewrite: the tenant chain heads at seq 3 do not give the Merkle root signed by the checkpoint signed at \S+ \(seq 3\)/);
    expect(result.stdout).toMatch(/bad: rewrite: the tenant chain heads at seq 6 do not give the Merkle root signed by the checkpoint signed at \S+ \(seq 6\)/);

    const next = await appendAndSign(3);
    expect(next.at(-1)).toEqual({ withheld: expect.stringMatching(/^the tenant chain heads at seq 6 no longer give the Merkle root signed at/) });
    expect(errors).toEqual([
      expect.stringMatching(/^ledger checkpoint withheld: the ledger does not extend the last signed checkpoint: the tenant chain heads at seq 6/),
    ]);
  });

  test('when an entry after the last checkpoint is edited in place, then the signer withholds the next checkpoint', async () => {
    await appendAndSign(3);
    await append(2);
    await withTriggersDisabled(admin, async (trx) => void (await sql`update audit_events set details = '{"i":99}'::jsonb where seq = 5`.execute(trx)));

    const outcome = (await appendAndSign(1))[0];
    expect(outcome).toEqual({ withheld: 'entry seq 5: hash does not match the entry content' });
    expect((await jsm.streams.info(stream)).state.messages).toBe(1);
  });

  test('when an owner inserts a forged entry into the middle and recomputes the chain, then verify names the forged insert', async () => {
    await appendAndSign(6);
    await withTriggersDisabled(admin, async (trx) => {
      await shiftUpFrom(trx, 3);
      await sql`insert into audit_events (seq, event_id, tenant_id, event_type, occurred_at, details, prev_hash, hash, tenant_seq, tenant_prev_hash, tenant_hash)
                values (3, ${randomUUID()}, 'acme-corp', 'TENANT_DELETED', '2020-01-01T00:00:00Z', '{}', '', '', 0, '', '')`.execute(trx);
      await rechainFrom(trx, 3);
    });

    expect((await verify(['--chain-only'])).code).toBe(0);
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /bad: forged_insert: the entry signed by the checkpoint signed at \S+ \(seq 3\) is now at seq 4: 1 entries were inserted before it/,
    );
    expect(result.stdout).toMatch(
      /bad: forged_insert: the entry signed by the checkpoint signed at \S+ \(seq 6\) is now at seq 7: 1 entries were inserted before it/,
    );
  });

  test('when a rewritten ledger was signed again with the key (two histories signed), then verify names the fork', async () => {
    await appendAndSign(3);
    await withTriggersDisabled(admin, async (trx) => {
      await sql`update audit_events set details = '{"i":99}'::jsonb where seq = 2`.execute(trx);
      await rechainFrom(trx, 2);
    });
    await append(3);
    // The honest signer withholds; a key holder who does not check (or a signer run without its
    // stream) signs the rewritten branch.
    expect(await signer.signIfDue()).toEqual({ withheld: expect.any(String) });
    await publishCheckpoint(nc.jetstream(), prefix, await signAsItIs(key.privateKey));

    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /bad: fork: the ledger matches the checkpoint signed at \S+ \(seq 6\) but not the checkpoint signed at \S+ \(seq 3\): the tenant chain heads at seq 3 do not give the Merkle root/,
    );
  });

  test('when the newest checkpoint signs a tenant tree the ledger does not give, then verify says so', async () => {
    await append(4);
    const head = await service.selectFrom('audit_events').select(['seq', 'event_id', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    const tree = tenantTree(await tenantHeadsAt(service, head.seq));
    expect(tree.size).toBe(4); // four tenants, one entry each
    await publishCheckpoint(nc.jetstream(), prefix, await signAsItIs(key.privateKey, { size: tree.size, root: 'a'.repeat(64) }));

    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^ok: all 4 entries valid\nbad: rewrite: the tenant chain heads at seq 4 do not give the Merkle root signed by the checkpoint signed at \S+ \(seq 4\): a tenant chain was changed\n$/,
    );
  });

  test('when someone with NATS access publishes a checkpoint with another key, then verify names the forged checkpoint', async () => {
    await appendAndSign(3);
    const otherKey = generateKeyPairSync('ed25519').privateKey;
    await nc.jetstream().publish(checkpointSubject(prefix), JSON.stringify(await signAsItIs(otherKey, { size: 0, root: '0'.repeat(64) })));
    await nc.jetstream().publish(checkpointSubject(prefix), 'not a checkpoint');
    // The real checkpoint with its key id and signature, claiming another tree, or another head.
    const real = JSON.parse((await jsm.streams.getMessage(stream, { seq: 1 })).string()) as { head: Record<string, unknown> };
    await nc.jetstream().publish(checkpointSubject(prefix), JSON.stringify({ ...real, tree_size: 7 }));
    await nc.jetstream().publish(checkpointSubject(prefix), JSON.stringify({ ...real, head: { ...real.head, seq: '2' } }));

    const result = await verify();
    expect(result.code).toBe(1);
    const other = keyIdOf(createPublicKey(otherKey)).slice(0, 16);
    const own = key.keyId.slice(0, 16);
    expect(result.stdout).toBe(
      'ok: all 3 entries valid\n' +
        `bad: forged_checkpoint: stream message 2 is a foreign message: a checkpoint signed by key ${other}, which is not a key of this series\n` +
        'bad: forged_checkpoint: stream message 3 is a foreign message: not JSON\n' +
        `bad: forged_checkpoint: stream message 4 is a foreign message: a checkpoint whose signature or digests do not verify with key ${own}\n` +
        `bad: forged_checkpoint: stream message 5 is a foreign message: a checkpoint whose signature or digests do not verify with key ${own}\n`,
    );
    // The signer ignores them: its next checkpoint extends its own last one.
    const next = await appendAndSign(3);
    expect(next.at(-1)).toMatchObject({ signed: { head: { seq: '6' }, previous: expect.stringMatching(/^[0-9a-f]{64}$/) } });
  });

  test('when the checkpoint stream is gone, then verify says so and exits 1', async () => {
    await appendAndSign(3);
    await jsm.streams.delete(stream);
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`bad: missing_checkpoints: checkpoint stream ${stream} does not exist`);
  });

  test('when the public key is missing or NATS is down, then verify exits 2 or 3 with a clear message', async () => {
    const noKey = await verify(['--checkpoint-key', path.join(keyDir, 'nope.pem')]);
    expect(noKey).toMatchObject({ code: 2, stdout: '' });
    expect(noKey.stderr).toMatch(/cannot read the checkpoint public key .*nope\.pem: no such file/);

    let stderr = '';
    const code = await runServiceFs(
      ['verify'],
      { DATABASE_URL: world.testDb.serviceUrl, NATS_URL: 'nats://127.0.0.1:1', DATA_DIR: keyDir },
      { stdout: () => undefined, stderr: (t) => (stderr += t) },
    );
    expect(code).toBe(3);
    expect(stderr).toMatch(/^service-fs: cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  });
});

describe('the checkpoint signing key', () => {
  test('when the worker starts first, then it writes a 0600 Ed25519 key and its public half; a second start keeps the same key and leaves the public file alone', async () => {
    expect((await stat(key.privateKeyFile)).mode & 0o777).toBe(0o600);
    expect(key.generated).toBe(true);
    // The public half is written once, not at every start.
    const publicFile = path.join(keyDir, CHECKPOINT_PUBLIC_KEY_FILE);
    await utimes(publicFile, new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'));
    const again = await ensureCheckpointSigningKey(keyDir);
    expect(again).toMatchObject({ keyId: key.keyId, generated: false });
    expect((await stat(publicFile)).mtime.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(await verify(['--checkpoint-key', path.join(keyDir, CHECKPOINT_PUBLIC_KEY_FILE)])).toMatchObject({ code: 0 });
  });

  test('when the key file is readable by others or not a key, then the start stops with a message naming the file', async () => {
    await chmod(key.privateKeyFile, 0o644);
    await expect(ensureCheckpointSigningKey(keyDir)).rejects.toThrow(/ledger-checkpoint-key\.pem is readable by others \(mode 644\)/);
    await writeFile(key.privateKeyFile, 'garbage', { mode: 0o600 });
    await chmod(key.privateKeyFile, 0o600);
    await expect(ensureCheckpointSigningKey(keyDir)).rejects.toThrow(/ledger-checkpoint-key\.pem is not a PEM private key/);
  });

  test('when the API is asked for the checkpoint key, then it publishes the public key without a token; 503 with Retry-After until there is one', async () => {
    let published: ReturnType<typeof generateKeyPairSync>['publicKey'] | null = null;
    const served = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl }), { ledgerCheckpointKey: async () => published });
    try {
      const url = `${served.url}${CHECKPOINT_KEY_PATH}`;
      const before = await fetch(url);
      expect(before.status).toBe(503);
      expect(before.headers.get('retry-after')).toBe('5');
      expect(await before.json()).toMatchObject({ code: 'dependency_unavailable' });

      published = key.publicKey;
      const after = await fetch(url);
      expect(after.status).toBe(200);
      const body = (await after.json()) as { algorithm: string; key_id: string; public_key_pem: string };
      expect(body).toEqual({ algorithm: 'Ed25519', key_id: key.keyId, public_key_pem: expect.stringMatching(/^-----BEGIN PUBLIC KEY-----/) });
      // What a tenant saves from the API is enough for verify.
      const saved = path.join(keyDir, 'from-api.json');
      await writeFile(saved, JSON.stringify(body));
      await appendAndSign(3);
      expect(await verify(['--checkpoint-key', saved])).toMatchObject({ code: 0 });

      // A key file that cannot be read (here: the source throws) is a 503 too, never a 500.
      published = null;
      const broken = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl }), { ledgerCheckpointKey: () => Promise.reject(new Error('EACCES')) });
      const failed = await fetch(`${broken.url}${CHECKPOINT_KEY_PATH}`);
      await broken.close();
      expect(failed.status).toBe(503);
      expect(await failed.json()).toMatchObject({ code: 'dependency_unavailable', detail: 'The ledger checkpoint key cannot be read right now.' });
    } finally {
      await served.close();
    }
  });
});
