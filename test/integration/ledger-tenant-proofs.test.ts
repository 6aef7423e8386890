import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import type { JetStreamManager, NatsConnection } from 'nats';
import { runServiceFs } from '../../src/cli/service-fs';
import type { Database } from '../../src/db/tables';
import { publishCheckpoint, readLastCheckpointText } from '../../src/ledger/checkpoint-stream';
import { signCheckpoint, withoutHead } from '../../src/ledger/checkpoint';
import { linkHashOfMessage } from '../../src/ledger/checkpoint-link';
import { entryTreeHeadsAt } from '../../src/ledger/entry-tree.repository';
import { CHECKPOINT_PUBLIC_KEY_FILE, ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import type { LedgerCheckpointSigner } from '../../src/ledger/checkpoint-signer';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { tenantHeadsAt } from '../../src/ledger/ledger-queries';
import { tenantTree } from '../../src/ledger/tenant-tree';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { tenantWithAuditToken, useCheckpointWorld } from '../helpers/checkpoint-world';
import { rechainFrom, shiftUpFrom, withTriggersDisabled } from '../helpers/ledger-tampering';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { testConfig, testEnv } from '../helpers/test-env';

const world = useCheckpointWorld({ label: 'tproof' });
let service: Kysely<Database>;
let admin: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let dir: string;
let key: CheckpointSigningKey;
let signer: LedgerCheckpointSigner;
let served: ServedApi;
let api: string;
const tokens: Record<string, string> = {};

beforeEach(async () => {
  ({ service, nc, jsm, stream, prefix, keyDir: dir } = world);
  admin = world.testDb.adminDb();
  key = await ensureCheckpointSigningKey(dir);
  signer = world.signer(key, { everyEntries: 1 });
  for (const tenant of ['acme-corp', 'globex']) tokens[tenant] = await tenantWithAuditToken(service, tenant);
  // The API as buildApi wires it: the newest checkpoint of the key on this stream, foreign messages skipped.
  served = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl, LEDGER_CHECKPOINT_STREAM: stream }), {
    ledgerCheckpointKey: async () => key.publicKey,
  });
  api = served.url;
});

afterEach(async () => {
  await served.close();
});

/** Entries of acme-corp, globex and the platform, interleaved, signed after each. */
async function history(rounds: number): Promise<void> {
  for (let i = 0; i < rounds; i += 1) {
    for (const tenant of ['acme-corp', 'globex', null]) {
      await appendAuditEvent(
        service,
        newAuditEvent({
          tenant_id: tenant,
          details: { i },
          context: i === 0 ? { actor_scope: 'service:admin', source_ip: '198.51.100.7', user_agent: 'operator-cli' } : {},
        }),
      );
      await signer.signIfDue();
    }
  }
}

async function get(route: string, tenant: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${api}${route}`, { headers: { authorization: `Bearer ${tokens[tenant]}` } });
  return { status: response.status, text: await response.text() };
}

/** What a tenant saves: every page of its entries, and a proof. */
async function save(tenant: string, name: string): Promise<{ entries: string; proof: string }> {
  const entries = path.join(dir, `${name}-entries.jsonl`);
  const pages: string[] = [];
  let cursor: string | null = null;
  do {
    const page = await get(`/v1/audit?limit=2${cursor ? `&cursor=${cursor}` : ''}`, tenant);
    expect(page.status).toBe(200);
    pages.push(page.text);
    cursor = (JSON.parse(page.text) as { next_cursor: string | null }).next_cursor;
  } while (cursor);
  await writeFile(entries, pages.join('\n'));
  const proof = path.join(dir, `${name}-proof.json`);
  const response = await get('/v1/audit/proof', tenant);
  expect(response.status).toBe(200);
  await writeFile(proof, response.text);
  return { entries, proof };
}

async function verifyTenant(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runServiceFs(
    ['verify-tenant', '--checkpoint-key', path.join(dir, CHECKPOINT_PUBLIC_KEY_FILE), ...args],
    {},
    { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) },
  );
  return { code, stdout, stderr };
}

const files = (...saved: Array<{ entries: string; proof: string }>) => ['--entries', saved.at(-1)!.entries, ...saved.flatMap((s) => ['--proof', s.proof])];

describe('tenant proofs', () => {
  test('when a tenant verifies its entries and proof offline, then everything checks, and the proof names no other tenant and no global seq or hash', async () => {
    await history(3);
    const saved = await save('acme-corp', 'acme');

    expect(await verifyTenant(files(saved))).toEqual({
      code: 0,
      stdout: expect.stringMatching(
        /^ok: 3 entries of tenant acme-corp link and recompute\nok: 1 signed checkpoint cover these entries; the newest \(signed \S+\) up to tenant_seq 3\n$/,
      ),
      stderr: '',
    });
    const proof = JSON.parse(await (await import('node:fs/promises')).readFile(saved.proof, 'utf8')) as Record<string, unknown>;
    expect(Object.keys(proof).sort()).toEqual([
      'audit_path',
      'checkpoint',
      'checkpoint_id',
      'event_id',
      'leaf_index',
      'tenant_hash',
      'tenant_id',
      'tenant_seq',
      'tree_size',
    ]);
    expect(proof).toMatchObject({ tenant_id: 'acme-corp', tenant_seq: '3', tree_size: 3 });
    const others = await service
      .selectFrom('audit_events')
      .select(['seq', 'hash', 'tenant_hash', 'event_id'])
      .where((eb) => eb.or([eb('tenant_id', '!=', 'acme-corp'), eb('tenant_id', 'is', null)]))
      .execute();
    const acme = await service.selectFrom('audit_events').select(['hash']).where('tenant_id', '=', 'acme-corp').execute();
    const text = JSON.stringify(proof) + (await (await import('node:fs/promises')).readFile(saved.entries, 'utf8'));
    for (const needle of ['globex', ...others.flatMap((o) => [o.hash, o.tenant_hash, o.event_id]), ...acme.map((a) => a.hash), '198.51.100.7', 'operator-cli'])
      expect([needle, text.includes(needle)]).toEqual([needle, false]);
    expect(text).not.toMatch(/"seq"|"prev_hash"|"hash"/);
  });

  test("when an owner cuts off the tenant's newest entries, then the tenant's saved proof shows the truncation", async () => {
    await history(3);
    const saved = await save('acme-corp', 'acme');
    await withTriggersDisabled(admin, async (trx) => void (await sql`delete from audit_events where tenant_id = 'acme-corp' and tenant_seq = 3`.execute(trx)));
    // The API can no longer prove the tenant's head: the stored heads do not give the signed tree.
    expect((await get('/v1/audit/proof', 'acme-corp')).status).toBe(503);
    const now = path.join(dir, 'now.jsonl');
    await writeFile(now, (await get('/v1/audit?limit=500', 'acme-corp')).text);

    const result = await verifyTenant(['--entries', now, '--proof', saved.proof]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /bad: truncation: the entries end at tenant_seq 2, but the proof of the checkpoint signed at \S+ \(tenant_seq 3\) covers tenant_seq 3: entries were cut off/,
    );
  });

  test('when an owner rewrites an entry of the tenant and recomputes every chain, then the tenant sees the rewrite', async () => {
    await history(3);
    const saved = await save('acme-corp', 'acme');
    await withTriggersDisabled(admin, async (trx) => {
      await sql`update audit_events set details = '{"i":99}'::jsonb where tenant_id = 'acme-corp' and tenant_seq = 2`.execute(trx);
      await rechainFrom(trx, 1);
    });
    const now = path.join(dir, 'now.jsonl');
    await writeFile(now, (await get('/v1/audit?limit=500', 'acme-corp')).text);

    const result = await verifyTenant(['--entries', now, '--proof', saved.proof]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /^ok: 3 entries of tenant acme-corp link and recompute\nbad: rewrite: tenant_seq 3 no longer has the hash proved by the proof of the checkpoint signed at \S+ \(tenant_seq 3\): it, or an entry before it, was changed\n$/,
    );
  });

  test("when an owner inserts a forged entry into the tenant's chain and recomputes, then the tenant sees the forged insert", async () => {
    await history(3);
    const saved = await save('acme-corp', 'acme');
    await withTriggersDisabled(admin, async (trx) => {
      await shiftUpFrom(trx, 2);
      await sql`insert into audit_events (seq, event_id, tenant_id, event_type, occurred_at, details, prev_hash, hash, tenant_seq, tenant_prev_hash, tenant_hash)
                values (2, ${randomUUID()}, 'acme-corp', 'TENANT_DELETED', '2020-01-01T00:00:00Z', '{}', '', '', 0, '', '')`.execute(trx);
      await rechainFrom(trx, 1);
    });
    const now = path.join(dir, 'now.jsonl');
    await writeFile(now, (await get('/v1/audit?limit=500', 'acme-corp')).text);

    const result = await verifyTenant(['--entries', now, '--proof', saved.proof]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /bad: forged_insert: the entry proved by the proof of the checkpoint signed at \S+ \(tenant_seq 3\) is now at tenant_seq 4: 1 entries were inserted before it/,
    );
  });

  test("when the rewritten history was signed again, then the tenant's old and new proofs show the fork", async () => {
    await history(2);
    const before = await save('acme-corp', 'before');
    await withTriggersDisabled(admin, async (trx) => {
      await sql`update audit_events set details = '{"i":99}'::jsonb where tenant_id = 'acme-corp' and tenant_seq = 1`.execute(trx);
      await rechainFrom(trx, 1);
    });
    // The honest signer refuses; a key holder who does not check signs the rewritten ledger.
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex' }));
    expect(await signer.signIfDue()).toEqual({ withheld: expect.any(String) });
    const head = await service.selectFrom('audit_events').select(['seq', 'event_id', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    const entries = (await entryTreeHeadsAt(service, [head.seq])).get(head.seq)!;
    const previous = linkHashOfMessage((await readLastCheckpointText(jsm, stream, prefix))!);
    await publishCheckpoint(
      nc.jetstream(),
      prefix,
      signCheckpoint({ head, tree: tenantTree(await tenantHeadsAt(service, head.seq)), entries, previous }, key.privateKey, new Date(Date.now() + 1000)),
    );
    const after = await save('acme-corp', 'after');

    const result = await verifyTenant(['--entries', after.entries, '--proof', before.proof, '--proof', after.proof]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(
      /bad: fork: the entries match the proof of the checkpoint signed at \S+ \(tenant_seq 2\) but not the proof of the checkpoint signed at \S+ \(tenant_seq 2\)/,
    );
  });

  test('when a proof is altered or signed with another key, then the tenant verifier refuses it', async () => {
    await history(2);
    const saved = await save('acme-corp', 'acme');
    const proof = JSON.parse(await (await import('node:fs/promises')).readFile(saved.proof, 'utf8')) as {
      audit_path: string[];
      checkpoint: Record<string, unknown>;
    };
    const altered = path.join(dir, 'altered.json');
    await writeFile(altered, JSON.stringify({ ...proof, audit_path: ['0'.repeat(64), ...proof.audit_path.slice(1)] }));
    const otherKey = generateKeyPairSync('ed25519').privateKey;
    const forged = signCheckpoint(
      {
        head: { seq: '1', event_id: randomUUID(), hash: '0'.repeat(64) },
        tree: { size: 1, root: '0'.repeat(64) },
        entries: { size: '1', root: '0'.repeat(64) },
        previous: null,
      },
      otherKey,
      new Date(),
    );
    const foreign = path.join(dir, 'foreign.json');
    await writeFile(foreign, JSON.stringify({ ...proof, checkpoint: withoutHead(forged) }));

    const result = await verifyTenant(['--entries', saved.entries, '--proof', altered, '--proof', foreign]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/bad: bad_proof: the proof of the checkpoint signed at \S+ \(tenant_seq 2\): this tenant's head is not in the signed tree/);
    expect(result.stdout).toMatch(/bad: forged_checkpoint: the proof of the checkpoint signed at \S+ \(tenant_seq 2\) is not signed by this key/);
  });

  test("when the operator runs verify --tenant, then it checks that tenant's chain and proof from the database and the stream", async () => {
    await history(2);
    let stdout = '';
    const env = {
      DATABASE_URL: world.testDb.serviceUrl,
      NATS_URL: testEnv().natsUrl,
      LEDGER_CHECKPOINT_STREAM: stream,
      NATS_SUBJECT_PREFIX: prefix,
      DATA_DIR: dir,
    };
    const code = await runServiceFs(['verify', '--tenant', 'globex'], env, { stdout: (t) => (stdout += t), stderr: () => undefined });
    expect({ code, stdout }).toEqual({
      code: 0,
      stdout: expect.stringMatching(
        /^ok: 2 entries of tenant globex link and recompute\nok: 1 signed checkpoint cover these entries; the newest \(signed \S+\) up to tenant_seq 2\n$/,
      ),
    });
  });

  test('when the checkpoint stream cannot be read, then the proof route answers 503 dependency_unavailable, not 500', async () => {
    const down = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl }), {
      latestLedgerCheckpoint: () => Promise.reject(Object.assign(new Error('CONNECTION_REFUSED'), { code: 'CONNECTION_REFUSED' })),
    });
    try {
      const response = await fetch(`${down.url}/v1/audit/proof`, { headers: { authorization: `Bearer ${tokens['acme-corp']}` } });
      expect(response.status).toBe(503);
      expect(response.headers.get('retry-after')).toBe('10');
      expect(await response.json()).toMatchObject({ code: 'dependency_unavailable', detail: 'The ledger checkpoint stream cannot be read right now.' });
    } finally {
      await down.close();
    }
  });

  test('when a tenant asks for a proof before any checkpoint, or for another tenant, then 409 not_anchored_yet with Retry-After (nothing is down), or 404', async () => {
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
    const early = await fetch(`${api}/v1/audit/proof`, { headers: { authorization: `Bearer ${tokens['acme-corp']}` } });
    expect(early.status).toBe(409);
    expect(early.headers.get('retry-after')).toBe('10');
    expect(await early.json()).toMatchObject({ code: 'not_anchored_yet', retry_after_seconds: 10 });
    expect((await get('/v1/audit/proof?tenant_id=globex', 'acme-corp')).status).toBe(404);
  });
});
