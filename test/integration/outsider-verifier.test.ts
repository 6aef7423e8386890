import { execFile, execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { insertToken } from '../../src/auth/token.repository';
import { generateToken, hashToken, newTokenId } from '../../src/auth/token-format';
import { runServiceFs } from '../../src/cli/service-fs';
import type { Database } from '../../src/db/tables';
import { ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import type { LedgerCheckpointSigner } from '../../src/ledger/checkpoint-signer';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import type { TenantProof } from '../../src/ledger/tenant-proof';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { useCheckpointWorld } from '../helpers/checkpoint-world';
import { testConfig, testEnv } from '../helpers/test-env';

/**
 * An outsider's verifier against the real thing. test/outsider/verify_tenant.py was written from
 * docs/audit-ledger.md and the OpenAPI document alone (Python, no code shared with src/ledger); here
 * it gets what the running API answers (a real ledger in Postgres, the real signer on NATS, a real
 * key rotation) and tampered copies of it, and `service-fs verify-tenant` gets the same files: both
 * must accept the honest data, both must refuse each tampering, and the Python one must name the
 * defect. Python and `cryptography` come from the project's .venv (scripts/ensure-python-cryptography.sh
 * installs the pinned version when missing); without them this test fails.
 */
jest.setTimeout(180_000);

const ROOT = path.resolve(__dirname, '../..');
const VERIFIER = path.join(ROOT, 'test/outsider/verify_tenant.py');
const TENANT = 'acme-corp';

const world = useCheckpointWorld({ label: 'outsider' });
let python: string;
let service: Kysely<Database>;
let dir: string;
let key: CheckpointSigningKey;
let signer: LedgerCheckpointSigner;
let served: ServedApi;
let token: string;

beforeAll(() => {
  // Throws (the test fails) when Python or the package cannot be had.
  python = execFileSync('bash', [path.join(ROOT, 'scripts/ensure-python-cryptography.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 170_000,
  }).trim();
});

beforeEach(async () => {
  ({ service, keyDir: dir } = world);
  key = await ensureCheckpointSigningKey(dir);
  signer = world.signer(key, { everyEntries: 1 });
  await service
    .insertInto('tenants')
    .values({
      tenant_id: TENANT,
      display_name: 'Acme',
      max_vms: 1,
      storage_quota_gb: 1,
      api_rate_limit_rpm: 100_000,
      created_at: new Date(),
      updated_at: new Date(),
    })
    .execute();
  token = generateToken();
  await insertToken(service, { token_id: newTokenId(), tenant_id: TENANT, scope: 'audit:read', token_hash: hashToken(token), created_at: new Date() });
  // The API holds the key of the series' start: it follows the rotation below on the stream.
  served = await serveApi(testConfig({ DATABASE_URL: world.testDb.serviceUrl, LEDGER_CHECKPOINT_STREAM: world.stream }), {
    ledgerCheckpointKey: async () => key.publicKey,
  });
});

afterEach(async () => {
  await served.close();
});

/** Details that exercise RFC 8785: key order by UTF-16 code units, number rendering, escapes, non-ASCII. */
const AWKWARD_DETAILS = [
  {
    z: 1,
    a: { y: [3, 2.5, -1e-7, 1e-6, 1e16, 1e21, 0.1, 123.456], b: null, t: true, f: false },
    '\u20ac': 'euro',
    '\ud83d\ude00': 'smile',
    '\ufb33': 'dalet',
    text: 'tab\there\u0001 "quoted" \\',
  },
  { display_name: 'Größe AG', max_vms: 10, nested: { list: [{ k: 'v' }, [], {}], empty: '' } },
  {
    reason: 'line\nbreak\r\u001f\u007f',
    ratio: 0.3333333333333333,
    big: 9007199254740991,
    negative: -42,
    extremes: [5e-324, 1.7976931348623157e308, 123456789012345680000, -0],
  },
];

/** `count` entries of acme-corp (the operator's and the tenant's own actions), one of another tenant, then one checkpoint. */
async function writeAndSign(count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const own = i % 2 === 1;
    await appendAuditEvent(
      service,
      newAuditEvent({
        tenant_id: TENANT,
        event_type: own ? 'VM_SPAWN_REQUESTED' : 'QUOTA_CHANGED',
        vm_id: own ? `vm-${i}` : null,
        details: { ...AWKWARD_DETAILS[i % AWKWARD_DETAILS.length], i },
        context: own
          ? { actor_scope: 'vm:write', actor_token_id: 'tok_tenant', source_ip: '2001:db8::7', user_agent: 'Größe-client/1.0 😀' }
          : { source_ip: '203.0.113.9', user_agent: 'ops-console' },
      }),
    );
  }
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex' }));
  await appendAuditEvent(service, newAuditEvent({ tenant_id: 'initech' }));
  expect(await signer.signIfDue()).toMatchObject({ signed: expect.anything() });
}

async function get<T>(pathAndQuery: string): Promise<T> {
  const response = await fetch(`${served.url}${pathAndQuery}`, { headers: { authorization: `Bearer ${token}` } });
  expect({ pathAndQuery, status: response.status }).toEqual({ pathAndQuery, status: 200 });
  return (await response.json()) as T;
}

interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Every page, following next_cursor, `limit` at a time. */
async function allPages<T>(route: string, limit: number, cursor?: string): Promise<Page<T>[]> {
  const pages: Page<T>[] = [];
  for (;;) {
    const query = new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) });
    const page = await get<Page<T>>(`${route}?${query}`);
    pages.push(page);
    if (page.next_cursor === null || page.items.length === 0) return pages;
    cursor = page.next_cursor;
  }
}

type Entry = Record<string, unknown> & { tenant_seq: string; details: Record<string, unknown> };
type Link = Record<string, unknown>;

/** What a tenant keeps: the key it pinned, the entry pages, the newest proof, the prior one and the links since it. */
interface Evidence {
  key: unknown;
  entries: Page<Entry>[];
  proof: TenantProof;
  prior: TenantProof;
  links: Page<Link>[];
}

let caseNumber = 0;

/** Saves the evidence as files (entries as JSON Lines of pages, one file per page of links) and runs both verifiers on them. */
async function verifyBoth(
  evidence: Evidence,
): Promise<{ python: { code: number; stdout: string; stderr: string }; typescript: { code: number; stdout: string } }> {
  caseNumber += 1;
  const caseDir = path.join(dir, `case-${caseNumber}`);
  await mkdir(caseDir);
  const save = async (name: string, text: string) => {
    const file = path.join(caseDir, name);
    await writeFile(file, text);
    return file;
  };
  const args = [
    '--pin-key',
    await save('key.json', JSON.stringify(evidence.key)),
    '--entries',
    await save('entries.jsonl', evidence.entries.map((page) => JSON.stringify(page)).join('\n') + '\n'),
    '--proof',
    await save('proof.json', JSON.stringify(evidence.proof)),
    '--prior-proof',
    await save('prior.json', JSON.stringify(evidence.prior)),
  ];
  for (const [i, page] of evidence.links.entries()) args.push('--checkpoints', await save(`links-${i}.json`, JSON.stringify(page)));

  const pythonRun = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    execFile(python, [VERIFIER, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') reject(error);
      else resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
    });
  });
  let stdout = '';
  const code = await runServiceFs(['verify-tenant', ...args], {}, { stdout: (t) => (stdout += t), stderr: (t) => (stdout += t) });
  return { python: pythonRun, typescript: { code, stdout } };
}

/**
 * Three checkpoints with a key rotation between the second and third: P1, P2 (old key), rotation,
 * P3 (new key). The tenant pinned the old key and saved P1; now it has P3 and the links since P1.
 */
async function buildHistory(): Promise<{ honest: Evidence; p2: TenantProof; linksAfterP2: Page<Link>[] }> {
  const pinned = await (await fetch(`${served.url}/.well-known/vm-tenant/ledger-checkpoint-key`)).json();
  await writeAndSign(3);
  const p1 = await get<TenantProof>('/v1/audit/proof');
  await writeAndSign(2);
  const p2 = await get<TenantProof>('/v1/audit/proof');
  let rotationOut = '';
  const env = {
    DATABASE_URL: world.testDb.serviceUrl,
    NATS_URL: testEnv().natsUrl,
    LEDGER_CHECKPOINT_STREAM: world.stream,
    NATS_SUBJECT_PREFIX: world.prefix,
    DATA_DIR: dir,
  };
  expect(await runServiceFs(['rotate-checkpoint-key'], env, { stdout: (t) => (rotationOut += t), stderr: (t) => (rotationOut += t) })).toBe(0);
  await writeAndSign(3);
  const p3 = await get<TenantProof>('/v1/audit/proof');
  expect(p3.checkpoint.key_id).not.toBe(p1.checkpoint.key_id);
  expect(p3.tenant_seq).toBe('8');
  const entries = await allPages<Entry>('/v1/audit', 3);
  expect(entries.length).toBeGreaterThan(2);
  const links = await allPages<Link>('/v1/audit/checkpoints', 2, p1.checkpoint_id);
  expect(links.flatMap((page) => page.items).map((link) => link.type ?? 'checkpoint')).toEqual(['checkpoint', 'key_rotation', 'checkpoint']);
  return {
    honest: { key: pinned, entries, proof: p3, prior: p1, links },
    p2,
    linksAfterP2: await allPages<Link>('/v1/audit/checkpoints', 2, p2.checkpoint_id),
  };
}

const clone = <T>(value: T): T => structuredClone(value);

/** Flips one bit of the base64 signature's first byte. */
function flipSignatureByte(signature: string): string {
  const bytes = Buffer.from(signature, 'base64');
  bytes[0] = bytes[0]! ^ 0x01;
  return bytes.toString('base64');
}

function withoutEntry(entries: Page<Entry>[], tenantSeq: string): Page<Entry>[] {
  return entries.map((page) => ({ ...page, items: page.items.filter((entry) => entry.tenant_seq !== tenantSeq) }));
}

describe("an outsider's verifier, written from the documents, on what the API answers", () => {
  test('when the data is honest, and when each piece of it is tampered with, then the outsider and service-fs verify-tenant agree, and the outsider names the defect', async () => {
    const { honest, p2, linksAfterP2 } = await buildHistory();

    const honestRun = await verifyBoth(honest);
    expect(honestRun.python.stderr).toBe('');
    expect(honestRun.python.stdout).toMatch(new RegExp(`^ok: 8 entries of tenant ${TENANT} link and recompute\n`));
    expect(honestRun.python.stdout).toMatch(/\nok: the checkpoint signed at \S+ extends the prior proof's \(signed at \S+\) by 3 signed links\n/);
    expect(honestRun.python.stdout).not.toMatch(/bad:/);
    expect({ python: honestRun.python.code, typescript: honestRun.typescript.code }).toEqual({ python: 0, typescript: 0 });

    const tampered: Array<{ name: string; defect: string; evidence: Evidence }> = [];
    const add = (name: string, defect: string, change: (e: Evidence) => void) => {
      const evidence = clone(honest);
      change(evidence);
      tampered.push({ name, defect, evidence });
    };
    add("an entry's details changed", 'rewrite', (e) => {
      const entry = e.entries.flatMap((page) => page.items).find((item) => item.tenant_seq === '4')!;
      entry.details = { ...entry.details, i: 99 };
    });
    add('an entry removed from the middle', 'gap', (e) => (e.entries = withoutEntry(e.entries, '5')));
    add('the newest entry removed', 'truncation', (e) => (e.entries = withoutEntry(e.entries, '8')));
    add("a hash of the newest proof's audit path altered", 'bad_proof', (e) => {
      const first = e.proof.audit_path[0]!;
      e.proof.audit_path[0] = (first[0] === '0' ? '1' : '0') + first.slice(1);
    });
    add("the newest proof's checkpoint_id is not its checkpoint's link hash", 'bad_proof', (e) => (e.proof.checkpoint_id = 'ab'.repeat(32)));
    add(
      "a byte of the newest checkpoint's signature flipped",
      'forged_checkpoint',
      (e) => (e.proof.checkpoint.signature = flipSignatureByte(e.proof.checkpoint.signature)),
    );
    add(
      "a byte of the prior checkpoint's signature flipped",
      'forged_checkpoint',
      (e) => (e.prior.checkpoint.signature = flipSignatureByte(e.prior.checkpoint.signature)),
    );
    add('an older proof given as the newest', 'rollback', (e) => {
      e.proof = honest.prior;
      e.prior = p2;
      e.links = linksAfterP2;
    });
    add("the key rotation's co-signature by the new key flipped", 'forged_checkpoint', (e) => {
      const rotation = e.links.flatMap((page) => page.items).find((link) => link.type === 'key_rotation')!;
      rotation.new_key_signature = flipSignatureByte(rotation.new_key_signature as string);
    });
    add('the first link after the prior checkpoint removed', 'fork', (e) => (e.links[0]!.items = e.links[0]!.items.slice(1)));
    add('the key rotation removed from the links', 'fork', (e) => {
      e.links = e.links.map((page) => ({ ...page, items: page.items.filter((link) => link.type !== 'key_rotation') }));
    });

    const outcomes: Array<{ name: string; python: { code: number; names: boolean }; typescript: { code: number }; output: string }> = [];
    for (const { name, defect, evidence } of tampered) {
      const run = await verifyBoth(evidence);
      outcomes.push({
        name,
        python: { code: run.python.code, names: new RegExp(`^bad: ${defect}: `, 'm').test(run.python.stdout) },
        typescript: { code: run.typescript.code },
        output: run.python.stdout + run.python.stderr + '\n--- service-fs:\n' + run.typescript.stdout,
      });
    }
    // One comparison for all cases, so that a failure shows every case with both verifiers' output.
    const expected = tampered.map(({ name }, i) => ({ name, python: { code: 1, names: true }, typescript: { code: 1 }, output: outcomes[i]!.output }));
    expect(outcomes).toEqual(expected);
  });
});
