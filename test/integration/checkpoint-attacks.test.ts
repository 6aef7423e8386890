import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { JetStreamManager, NatsConnection } from 'nats';
import { tenantProofSchema } from '../../src/api/openapi/response-schemas';
import { runServiceFs } from '../../src/cli/service-fs';
import type { Database } from '../../src/db/tables';
import { checkpointSubject, ensureCheckpointStream } from '../../src/ledger/checkpoint-stream';
import { CHECKPOINT_PRIVATE_KEY_FILE, CHECKPOINT_PUBLIC_KEY_FILE, ensureCheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import type { LedgerCheckpointSigner, SignOutcome } from '../../src/ledger/checkpoint-signer';
import { CHECKPOINT_STATE_FILE } from '../../src/ledger/checkpoint-state';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { createLogger } from '../../src/logging/logger';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { tenantWithAuditToken, useCheckpointWorld } from '../helpers/checkpoint-world';
import { rechainFrom, withTriggersDisabled } from '../helpers/ledger-tampering';
import { serveApi } from '../helpers/api-server';
import { testConfig, testEnv } from '../helpers/test-env';

/**
 * The attacks of issue 19 on the checkpoint anchors, each run for real (Postgres as a superuser,
 * the NATS stream, the key directory): each succeeded before chained, full-entry checkpoints and
 * the signer's refusal rules, and each must fail now.
 */
const world = useCheckpointWorld({ label: 'ckattack' });
let service: Kysely<Database>;
let admin: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let keyDir: string;
let signer: LedgerCheckpointSigner;
const errors: string[] = [];

beforeEach(async () => {
  ({ service, nc, jsm, stream, prefix, keyDir } = world);
  admin = world.testDb.adminDb();
  errors.length = 0;
  signer = await startWorker();
});

/** What a worker start does: the stream (created if missing), the key, a signer with a cadence of 3 entries. */
async function startWorker(): Promise<LedgerCheckpointSigner> {
  await ensureCheckpointStream(jsm, stream, prefix);
  const key = await ensureCheckpointSigningKey(keyDir);
  const log = createLogger({ name: 'signer', level: 'silent' });
  log.error = ((obj: { reason?: string }, msg: string) => void errors.push(`${msg}: ${obj.reason}`)) as never;
  return world.signer(key, { log });
}

async function restartWorker(): Promise<void> {
  await signer.stop();
  signer = await startWorker();
}

async function appendAndSign(count: number, event: Parameters<typeof newAuditEvent>[0] = {}): Promise<SignOutcome[]> {
  const outcomes: SignOutcome[] = [];
  for (let i = 0; i < count; i += 1) {
    await appendAuditEvent(service, newAuditEvent({ details: { i }, ...event }));
    outcomes.push(await signer.signIfDue());
  }
  return outcomes;
}

async function verify(): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const env = {
    DATABASE_URL: world.testDb.serviceUrl,
    NATS_URL: testEnv().natsUrl,
    LEDGER_CHECKPOINT_STREAM: stream,
    NATS_SUBJECT_PREFIX: prefix,
    DATA_DIR: keyDir,
  };
  const code = await runServiceFs(['verify'], env, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const streamMessages = async () => (await jsm.streams.info(stream)).state.messages;

describe('attacks on the checkpoint anchors', () => {
  test('when the checkpoint stream is deleted, the worker restarted and an owner rewrites and recomputes, then the signer refuses to start a new series and verify names the lost checkpoints and the rewrite', async () => {
    await appendAndSign(6);
    await jsm.streams.delete(stream);
    await withTriggersDisabled(admin, async (trx) => {
      await sql`update audit_events set details = '{"i":99}'::jsonb where seq = 2`.execute(trx);
      await rechainFrom(trx, 2);
    });
    await restartWorker(); // recreates the stream, empty

    const outcome = (await appendAndSign(3)).at(-1);
    expect(outcome).toEqual({
      code: 'stream_lost',
      refused: expect.stringMatching(
        /^the signer's last link, the checkpoint signed at \S+ \(seq 6\), is not at message 2 of checkpoint stream \S+ \(the stream is empty\): the stream was deleted, recreated or cut back\. Refusing to start a new checkpoint series/,
      ),
    });
    expect(errors).toEqual([expect.stringMatching(/^ledger checkpoint signer stopped: the signer's last link/)]);
    expect(await streamMessages()).toBe(0);
    expect(await signer.signIfDue()).toMatchObject({ code: 'stream_lost' }); // it stays stopped

    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^ok: all 9 entries valid\n/);
    expect(result.stdout).toMatch(
      /\nbad: missing_checkpoints: the signer's last link, the checkpoint signed at \S+ \(seq 6\) recorded in \S+ledger-checkpoint-last\.json, is not on the stream: the stream was deleted, replaced or cut back\n/,
    );
    expect(result.stdout).toMatch(
      /\nbad: rewrite: the tenant chain heads at seq 6 do not give the Merkle root signed by the checkpoint signed at \S+ \(seq 6\)/,
    );
  });

  test('when an unsigned message is published on the checkpoint subject, then proofs keep answering, the signer (restarted, with or without its state file) extends its own series, and verify names the foreign message', async () => {
    const token = await tenantWithAuditToken(service, 'acme-corp');
    const key = await ensureCheckpointSigningKey(keyDir);
    // The API as buildApi wires it, on this stream with this key.
    const served = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl, LEDGER_CHECKPOINT_STREAM: stream }), {
      ledgerCheckpointKey: async () => key.publicKey,
    });
    const proof = async () => {
      const response = await fetch(`${served.url}/v1/audit/proof`, { headers: { authorization: `Bearer ${token}` } });
      return { status: response.status, body: (await response.json()) as { tenant_seq?: string; checkpoint?: { v: number } } };
    };
    try {
      await appendAndSign(3, { tenant_id: 'acme-corp' });
      const first = await proof();
      expect(first).toMatchObject({ status: 200, body: { tenant_seq: '3', checkpoint: { v: 2 } } });
      expect(tenantProofSchema.safeParse(first.body).error).toBeUndefined(); // as the OpenAPI document says

      // The signed checkpoint with its signature stripped and a claim of its own: an unsigned message.
      const real = JSON.parse((await jsm.streams.getMessage(stream, { seq: 1 })).string()) as Record<string, unknown>;
      await nc.jetstream().publish(checkpointSubject(prefix), JSON.stringify({ ...real, signature: undefined, tree_size: 1 }));
      expect(await proof()).toMatchObject({ status: 200, body: { tenant_seq: '3' } });

      await restartWorker();
      expect((await appendAndSign(3, { tenant_id: 'acme-corp' })).at(-1)).toMatchObject({ signed: { head: { seq: '6' } } });
      expect(await proof()).toMatchObject({ status: 200, body: { tenant_seq: '6' } });

      // A worker whose data directory did not persist: it finds its own last link behind the foreign message.
      await nc.jetstream().publish(checkpointSubject(prefix), 'not even JSON');
      await rm(path.join(keyDir, CHECKPOINT_STATE_FILE));
      await restartWorker();
      expect((await appendAndSign(3, { tenant_id: 'acme-corp' })).at(-1)).toMatchObject({ signed: { head: { seq: '9' } } });
      expect(await proof()).toMatchObject({ status: 200, body: { tenant_seq: '9' } });
      expect(errors).toEqual([]);
    } finally {
      await served.close();
    }

    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      'ok: all 9 entries valid\n' +
        'bad: forged_checkpoint: stream message 2 is a foreign message: not a signed checkpoint\n' +
        'bad: forged_checkpoint: stream message 4 is a foreign message: not JSON\n',
    );
  });

  test("when an owner rewrites the source address of a platform admin's entry and recomputes the hashes, then verify names the rewrite and a restarted signer withholds", async () => {
    await appendAndSign(1, { tenant_id: 'acme-corp' });
    await appendAndSign(1, { tenant_id: 'acme-corp', context: { actor_scope: 'service:admin', source_ip: '203.0.113.7', user_agent: 'operator-cli' } });
    await appendAndSign(4);
    await withTriggersDisabled(admin, async (trx) => {
      await sql`update audit_events set source_ip = '198.51.100.66', user_agent = 'curl/8' where seq = 2`.execute(trx);
      await rechainFrom(trx, 2);
    });

    let stdout = '';
    await runServiceFs(['verify', '--chain-only'], { DATABASE_URL: world.testDb.serviceUrl }, { stdout: (t) => (stdout += t), stderr: () => undefined });
    expect(stdout).toBe('ok: all 6 entries valid\n'); // every hash recomputes: the chain alone cannot tell
    const result = await verify();
    expect(result.code).toBe(1);
    expect(result.stdout).toBe(
      'ok: all 6 entries valid\n' +
        `bad: rewrite: the entries up to seq 3 do not give the entry tree signed by the checkpoint signed at ${/signed at (\S+) \(seq 3\)/.exec(result.stdout)?.[1]} (seq 3) (the same 3 entries): an entry was changed, added or removed\n` +
        `bad: rewrite: the entries up to seq 6 do not give the entry tree signed by the checkpoint signed at ${/signed at (\S+) \(seq 6\)/.exec(result.stdout)?.[1]} (seq 6) (the same 6 entries): an entry was changed, added or removed\n`,
    );

    await restartWorker();
    const outcome = (await appendAndSign(3)).at(-1);
    expect(outcome).toEqual({
      withheld: expect.stringMatching(
        /^the entries up to seq 6 no longer give the entry tree signed at \S+ \(6 entries, signed 6\): an entry was changed, added or removed$/,
      ),
    });
    expect(await streamMessages()).toBe(2);
  });

  test('when the key file is deleted and the worker restarted, then it stops instead of generating a new key; without its state file, the signer refuses the key it generated', async () => {
    await appendAndSign(3);
    await rm(path.join(keyDir, CHECKPOINT_PRIVATE_KEY_FILE));

    await expect(startWorker()).rejects.toThrow(
      /ledger-checkpoint-key\.pem is missing, but \S+ledger-checkpoint-last\.json records the last checkpoint this signer signed \(stream \S+, message 1\): checkpoints exist, so a new key would start a new series\. Restore the key file from its backup/,
    );
    expect((await readdir(keyDir)).sort()).toEqual([CHECKPOINT_STATE_FILE, CHECKPOINT_PUBLIC_KEY_FILE].sort());

    // A data directory that did not persist (no state file either): the stream still shows the series.
    await rm(path.join(keyDir, CHECKPOINT_STATE_FILE));
    await restartWorker();
    const outcome = (await appendAndSign(3)).at(-1);
    expect(outcome).toEqual({
      code: 'key_lost',
      refused: expect.stringMatching(
        /^checkpoint stream \S+ holds checkpoints signed by key [0-9a-f]{16}, none by this key \([0-9a-f]{16}\) and no rotation to it, which was generated at this start: the signing key file was lost or replaced/,
      ),
    });
    expect(await streamMessages()).toBe(1);
    expect(errors).toEqual([expect.stringMatching(/^ledger checkpoint signer stopped: checkpoint stream/)]);
  });
});
