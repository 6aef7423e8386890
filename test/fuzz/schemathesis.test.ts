/**
 * Schemathesis (PyPI, pinned in scripts/ensure-schemathesis.sh) against the running API, with a
 * real tenant token: every phase, the stateful one included (it follows the document's links from
 * a spawned VM to reading and destroying it), and every check that applies to this API. It fails
 * on any answer the served OpenAPI document does not describe (status, content type, body, headers)
 * and on any 5xx.
 *
 * Bounded: Schemathesis spends at most SCHEMATHESIS_MAX_TIME seconds (default 90) on the whole run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createTenant, SAMPLE_PUBKEY, startTestStack, type TestStack } from '../helpers/test-stack';

const ROOT = path.resolve(__dirname, '../..');
const MAX_TIME_SECONDS = Number(process.env.SCHEMATHESIS_MAX_TIME ?? 90);
// A fixed seed keeps CI reproducible; SCHEMATHESIS_SEED=<n> explores other inputs.
const SEED = process.env.SCHEMATHESIS_SEED ?? '20261127';

/**
 * use_after_free is left out on purpose: DELETE /v1/vms/{vm_id} is asynchronous (202), and the VM
 * stays readable as destroying, then destroyed, as the document says; a 404 after it would lose
 * the destroy's outcome.
 */
const EXCLUDED_CHECKS = ['use_after_free'];

// Room for a second run (see onlyToolErrors).
jest.setTimeout((2 * MAX_TIME_SECONDS + 150) * 1000);

interface RunResult {
  code: number | null;
  output: string;
}

function runSchemathesis(st: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(st, args, { cwd: ROOT, env: { ...process.env, ...env, NO_COLOR: '1', PYTHONUNBUFFERED: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // A deadline past Schemathesis's own budget: a hung run fails instead of holding CI.
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

function schemathesisArgs(apiUrl: string, token: string): string[] {
  return [
    '--config-file',
    path.join(__dirname, 'schemathesis.toml'),
    'run',
    `${apiUrl}/openapi.json`,
    '--url',
    apiUrl,
    '--phases',
    'examples,coverage,fuzzing,stateful',
    '--checks',
    'all',
    '--exclude-checks',
    EXCLUDED_CHECKS.join(','),
    '--max-time',
    String(MAX_TIME_SECONDS),
    '--seed',
    SEED,
    '--workers',
    '2',
    '--request-timeout',
    '10',
    '--generation-database',
    'none',
    '--no-color',
    '--header',
    `Authorization: Bearer ${token}`,
  ];
}

/**
 * True when the run found nothing wrong with the API and failed only inside Schemathesis: no
 * FAILURES section, and every error of the summary is an unclassified "Runtime Error" (an
 * unreachable, hung or unhealthy API is reported under other titles, and still fails at once).
 */
function onlyToolErrors(output: string): boolean {
  if (/^=+ FAILURES =+$/m.test(output)) return false;
  const errors = /^Errors:\n((?:[ \t]+\S.*\n)+)/m.exec(output)?.[1];
  return (
    !!errors &&
    errors
      .trimEnd()
      .split('\n')
      .every((line) => /Runtime Error/.test(line))
  );
}

/** The ERRORS and FAILURES sections, first: CI logs may keep only the start and the end of a long output. */
function failureSections(output: string): string {
  const start = output.search(/^=+ (ERRORS|FAILURES) =+$/m);
  if (start < 0) return '';
  const end = output.search(/^=+ (WARNINGS|SUMMARY) =+$/m);
  return output.slice(start, end > start ? end : undefined).slice(0, 12_000);
}

describe('Schemathesis against the running API', () => {
  let stack: TestStack;
  let st: string;

  beforeAll(async () => {
    st = execFileSync('bash', [path.join(ROOT, 'scripts/ensure-schemathesis.sh')], { encoding: 'utf8', timeout: 120_000 }).trim();
    stack = await startTestStack();
    mkdirSync(path.join(ROOT, '.data'), { recursive: true });
  }, 180_000);
  afterAll(async () => {
    await stack?.close();
  });

  test('when it fuzzes every operation with a tenant token (stateful phase included), then every answer is documented and none is a 5xx', async () => {
    // High limits, so the run explores the API rather than the tenant's quota and rate limit.
    const { tenantId, token } = await createTenant(stack, { max_vms: 1000, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 });
    const revocable = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token,
      body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 600 },
    });
    expect(revocable.status).toBe(201);
    const env = { VM_TENANT_FUZZ_TENANT_ID: tenantId, VM_TENANT_FUZZ_REVOCABLE_TOKEN_ID: revocable.body.token_id };
    let { code, output } = await runSchemathesis(st, schemathesisArgs(stack.apiUrl, token), env, (MAX_TIME_SECONDS + 60) * 1000);
    if (code !== 0 && onlyToolErrors(output)) {
      // Schemathesis's own error, not a finding about the API: seen once in CI under load. Run it once more.
      process.stderr.write(`schemathesis failed inside the tool; running it again:\n${failureSections(output)}\n`);
      ({ code, output } = await runSchemathesis(st, schemathesisArgs(stack.apiUrl, token), env, (MAX_TIME_SECONDS + 60) * 1000));
    }
    // The output names each failing operation, the check and a curl line to reproduce it (token masked).
    writeFileSync(path.join(ROOT, '.data', `schemathesis-${process.pid}.log`), output);
    if (code !== 0) throw new Error(`schemathesis exited with ${code}:\n${failureSections(output)}\n${output.slice(-20_000)}`);
    expect(output).toMatch(/Stateful/i);
    // The run's token survived it: every phase ran authenticated (see the revocation in schemathesis.toml).
    expect((await stack.request('GET', '/v1/vms', { token })).status).toBe(200);
  });
});
