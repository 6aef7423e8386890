import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { JetStreamManager, NatsConnection } from 'nats';
import { runServiceFs } from '../../src/cli/service-fs';
import type { Database } from '../../src/db/tables';
import { ensureCheckpointStream, publishCheckpoint } from '../../src/ledger/checkpoint-stream';
import { signCheckpoint } from '../../src/ledger/checkpoint';
import { CHECKPOINT_PUBLIC_KEY_FILE, ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import type { LedgerCheckpointSigner } from '../../src/ledger/checkpoint-signer';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { tenantHeadsAt } from '../../src/ledger/ledger-queries';
import { tenantLinkHash } from '../../src/ledger/tenant-link';
import type { TenantProof } from '../../src/ledger/tenant-proof';
import { tenantTree } from '../../src/ledger/tenant-tree';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { tenantWithAuditToken, useCheckpointWorld } from '../helpers/checkpoint-world';
import { testConfig } from '../helpers/test-env';
import { runVmTenantCli } from '../helpers/vm-tenant-cli';

/**
 * Issue 19, item 4: a tenant detects rollback and split views. Everything real: the ledger in
 * Postgres, the signer and the checkpoint stream on NATS, the API over HTTP (buildApi), and
 * `service-fs verify-tenant` / `service-fs witness` on the files a tenant or a witness keeps.
 */
const world = useCheckpointWorld({ label: 'ckroll' });
let service: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let dir: string;
let key: CheckpointSigningKey;
let signer: LedgerCheckpointSigner;
let served: ServedApi;
let token: string;

beforeEach(async () => {
  ({ service, nc, jsm, stream, prefix, keyDir: dir } = world);
  key = await ensureCheckpointSigningKey(dir);
  signer = world.signer(key, { everyEntries: 1 });
  token = await tenantWithAuditToken(service, 'acme-corp');
  served = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl, LEDGER_CHECKPOINT_STREAM: stream }), {
    ledgerCheckpointKey: async () => key.publicKey,
  });
});

afterEach(async () => {
  await served.close();
});

/** `count` entries of acme-corp and one of another tenant, then one checkpoint over them. */
async function writeAndSign(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', details: { i } }));
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex' }));
  expect(await signer.signIfDue()).toMatchObject({ signed: expect.anything() });
}

async function get<T>(pathAndQuery: string): Promise<{ status: number; body: T }> {
  const response = await fetch(`${served.url}${pathAndQuery}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: response.status, body: (await response.json()) as T };
}

async function save(name: string, value: unknown): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(value));
  return file;
}

async function serviceFs(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runServiceFs(args, {}, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const proofNow = async () => (await get<TenantProof>('/v1/audit/proof')).body;
const entriesNow = async () => (await get<{ items: unknown[] }>('/v1/audit?limit=500')).body;
const linksAfter = async (proof: TenantProof) =>
  (await get<{ items: unknown[]; next_cursor: string | null }>(`/v1/audit/checkpoints?cursor=${proof.checkpoint_id}`)).body;
const pinKey = () => path.join(dir, CHECKPOINT_PUBLIC_KEY_FILE);

async function verifyTenant(files: { entries: unknown; proof: TenantProof; prior?: TenantProof; checkpoints?: unknown; witness?: string }) {
  const args = [
    'verify-tenant',
    '--pin-key',
    pinKey(),
    '--entries',
    await save('entries.json', files.entries),
    '--proof',
    await save('proof.json', files.proof),
  ];
  if (files.prior) args.push('--prior-proof', await save('prior.json', files.prior));
  if (files.checkpoints) args.push('--checkpoints', await save('checkpoints.json', files.checkpoints));
  if (files.witness) args.push('--witness', files.witness);
  return serviceFs(args);
}

async function witness(logFile: string) {
  const tokenFile = path.join(dir, 'witness-token');
  await writeFile(tokenFile, `${token}\n`);
  return serviceFs(['witness', '--api', served.url, '--token-file', tokenFile, '--pin-key', pinKey(), '--log', logFile]);
}

/**
 * A checkpoint signed with the real key over a history the ledger never had (one more tenant
 * head), following `previousId`: what an operator who holds the key shows one tenant while
 * everyone else sees the real series. The tenant's own head is real, so its inclusion proof holds.
 */
async function forgedProofAfter(previousId: string, real: TenantProof, signedAt: Date): Promise<TenantProof> {
  const heads = [
    ...(await tenantHeadsAt(service, '9223372036854775807')).map(({ tenant_id, tenant_seq, tenant_hash }) => ({ tenant_id, tenant_seq, tenant_hash })),
    { tenant_id: 'phantom', tenant_seq: '1', tenant_hash: 'f'.repeat(64) },
  ];
  const tree = tenantTree(heads);
  const forged = signCheckpoint(
    {
      head: { seq: '999', event_id: real.event_id, hash: 'e'.repeat(64) },
      tree: { size: tree.size, root: tree.root },
      entries: { size: '999', root: 'd'.repeat(64) },
      previous: previousId,
    },
    key.privateKey,
    signedAt,
  );
  const found = tree.proofFor('acme-corp')!;
  const { head: _head, entries: _entries, ...statement } = forged;
  return {
    ...real,
    checkpoint: statement,
    checkpoint_id: tenantLinkHash(statement),
    leaf_index: found.leaf_index,
    tree_size: tree.size,
    audit_path: found.audit_path,
  };
}

describe('a tenant checks a newer proof against the one it saved', () => {
  test('when the service extends its history honestly, then the proof at the saved checkpoint is the saved proof, the links lead from it to the newest, and verify-tenant --prior-proof passes', async () => {
    await writeAndSign(2);
    const prior = await proofNow();
    expect(prior).toMatchObject({ tenant_seq: '2', checkpoint_id: expect.stringMatching(/^[0-9a-f]{64}$/) });
    await writeAndSign(3);
    await writeAndSign(1);
    const newest = await proofNow();
    expect(newest.tenant_seq).toBe('6');

    // The proof against the checkpoint the tenant saved is what it saved.
    expect((await get<TenantProof>(`/v1/audit/proof?checkpoint=${prior.checkpoint_id}`)).body).toEqual(prior);
    const links = await linksAfter(prior);
    expect(links.items).toHaveLength(2);
    expect(links.next_cursor).toBeNull();

    const result = await verifyTenant({ entries: await entriesNow(), proof: newest, prior, checkpoints: links });
    expect(result.stdout).toMatch(/\nok: the checkpoint signed at \S+ extends the prior proof's \(signed at \S+\) by 2 signed links\n/);
    expect(result.code).toBe(0);
  });

  test('when the service shows an older proof than the one the tenant saved, then verify-tenant names a rollback', async () => {
    await writeAndSign(2);
    const older = await proofNow();
    await writeAndSign(2);
    const saved = await proofNow();
    const result = await verifyTenant({ entries: await entriesNow(), proof: older, prior: saved, checkpoints: await linksAfter(saved) });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/\nbad: rollback: the proof of the checkpoint signed at \S+ \(tenant_seq 2\) covers less than the prior proof/);
    expect(result.stdout).toMatch(/\nbad: rollback: the checkpoint shown now \(signed at \S+\) is older than the one of the prior proof/);
  });

  test('when the service withholds the newest entries, then verify-tenant names a rollback against the prior proof', async () => {
    await writeAndSign(4);
    const saved = await proofNow();
    const { items } = await entriesNow();
    const result = await verifyTenant({ entries: { items: items.slice(0, 2) }, proof: saved, prior: saved });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /\nbad: rollback: the entries end at tenant_seq 2, but the proof of the checkpoint signed at \S+ \(tenant_seq 4\) covers tenant_seq 4: entries were cut off: the prior proof covered them/,
    );
  });

  test('when the service shows the tenant a checkpoint of another history signed with its key (a split view), then verify-tenant names a fork, with the links or with a witness log', async () => {
    await writeAndSign(2);
    const first = await proofNow();
    await writeAndSign(1);
    const saved = await proofNow();
    const logFile = path.join(dir, 'witness.jsonl');
    // The forged checkpoint follows the first one, beside the real second one: the same key, two histories.
    const forged = await forgedProofAfter(first.checkpoint_id, saved, new Date(Date.parse(saved.checkpoint.signed_at) + 1));
    const withLinks = await verifyTenant({ entries: await entriesNow(), proof: forged, prior: saved, checkpoints: { items: [forged.checkpoint] } });
    expect(withLinks.code).toBe(1);
    expect(withLinks.stdout).toMatch(/\nbad: fork: no chain of signed links leads from the prior proof's checkpoint \(signed at \S+\) to the one shown now/);

    // The witness followed the real series past the forged checkpoint's time.
    await writeAndSign(1);
    expect(await witness(logFile)).toMatchObject({
      code: 0,
      stdout:
        'ok: witnessed 3 new links (3 in the log); the tip is ' +
        (await proofNow()).checkpoint_id +
        ` (signed at ${(await proofNow()).checkpoint.signed_at})\n`,
    });
    const withWitness = await verifyTenant({ entries: await entriesNow(), proof: forged, witness: logFile });
    expect(withWitness.code).toBe(1);
    expect(withWitness.stdout).toMatch(
      /\nbad: fork: the checkpoint signed at \S+ is not in the witness's log, which goes on to \S+: the service showed you a checkpoint it did not show the witness \(a split view\)/,
    );
    // The honest newest proof passes the same witness check.
    const honest = await verifyTenant({ entries: await entriesNow(), proof: await proofNow(), witness: logFile });
    expect(honest).toMatchObject({ code: 0 });
    expect(honest.stdout).toMatch(/\nok: the witness saw the checkpoint signed at /);
  });
});

describe('vm-tenant audit verify with a state directory', () => {
  test('when run twice, then the second run checks the newest proof against the one the first kept; when the kept proof is of another history, then it fails and keeps it', async () => {
    const state = path.join(dir, 'state');
    const env = { VM_TENANT_URL: served.url, VM_TENANT_TOKEN: token };
    const verify = () => runVmTenantCli(['--output', 'json', 'audit', 'verify', '--pin-key', pinKey(), '--state-dir', state], dir, env);
    await writeAndSign(2);
    const first = await verify();
    expect(first).toMatchObject({ code: 0 });
    expect(JSON.parse(first.stdout)).toEqual({ ok: true, entries: 2, proofs: 1, prior: false });
    const kept = path.join(state, 'prior-proof-own.json');
    expect(JSON.parse(await readFile(kept, 'utf8'))).toEqual(await proofNow());

    await writeAndSign(1);
    const second = await verify();
    expect(second).toMatchObject({ code: 0 });
    expect(second.stderr).toMatch(/ok: the checkpoint signed at \S+ extends the prior proof's \(signed at \S+\) by 1 signed link/);
    expect(JSON.parse(second.stdout)).toEqual({ ok: true, entries: 3, proofs: 1, prior: true });

    // A kept proof of a checkpoint the service's series does not hold (shown to this tenant alone, say).
    const shown = await proofNow();
    const forged = await forgedProofAfter((shown.checkpoint as { previous: string }).previous, shown, new Date(Date.parse(shown.checkpoint.signed_at) - 1));
    await writeFile(kept, JSON.stringify(forged));
    await writeAndSign(1);
    const third = await verify();
    expect(third.code).toBe(1);
    expect(third.stderr).toMatch(/the service does not know the checkpoint of the saved proof/);
    expect(third.stderr).toMatch(/bad: fork: no chain of signed links leads from the prior proof's checkpoint/);
    expect(JSON.parse(await readFile(kept, 'utf8'))).toEqual(forged);
  });
});

describe('a witness follows the series', () => {
  test('when the series goes on, then the witness appends only the new links; when the service resets its history, then the witness refuses and keeps its log', async () => {
    const logFile = path.join(dir, 'witness.jsonl');
    await writeAndSign(1);
    await writeAndSign(1);
    expect((await witness(logFile)).stdout).toMatch(/^ok: witnessed 2 new links \(2 in the log\)/);
    await writeAndSign(1);
    expect((await witness(logFile)).stdout).toMatch(/^ok: witnessed 1 new link \(3 in the log\)/);
    expect((await witness(logFile)).stdout).toMatch(/^ok: witnessed 0 new links \(3 in the log\)/);
    const logged = await readFile(logFile, 'utf8');

    // The stream deleted and a new series signed with the same key from genesis.
    await signer.stop();
    await jsm.streams.delete(stream);
    await ensureCheckpointStream(jsm, stream, prefix);
    const heads = await tenantHeadsAt(service, '9223372036854775807');
    const tree = tenantTree(heads);
    await publishCheckpoint(
      nc.jetstream(),
      prefix,
      signCheckpoint(
        {
          head: { seq: '1', event_id: heads[0]!.event_id, hash: 'a'.repeat(64) },
          tree: { size: tree.size, root: tree.root },
          entries: { size: '1', root: 'b'.repeat(64) },
          previous: null,
        },
        key.privateKey,
        new Date(),
      ),
    );

    const refused = await witness(logFile);
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(
      /^bad: fork: the service no longer has the witnessed link [0-9a-f]{64} \(signed at \S+\): its series was reset or replaced\n$/,
    );
    expect(await readFile(logFile, 'utf8')).toBe(logged);
  });

  test('when asked for a checkpoint that is not in the series, then the API answers 404 checkpoint_not_found', async () => {
    await writeAndSign(1);
    const missing = 'a'.repeat(64);
    expect(await get(`/v1/audit/proof?checkpoint=${missing}`)).toMatchObject({ status: 404, body: { code: 'checkpoint_not_found' } });
    expect(await get(`/v1/audit/checkpoints?cursor=${missing}`)).toMatchObject({ status: 404, body: { code: 'checkpoint_not_found' } });
    expect(await get('/v1/audit/checkpoints?cursor=nothex')).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
  });
});
