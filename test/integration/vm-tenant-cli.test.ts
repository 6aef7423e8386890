/**
 * Issue 11, part 2: the `vm-tenant` CLI, run as a child process against a running stack, as a user would.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getFreePort } from '../../src/devstack/free-port';
import { createTenant, SAMPLE_PUBKEY, startTestStack, type TestStack } from '../helpers/test-stack';
import { uniqueName } from '../helpers/test-env';
import { runVmTenantCli, type CliResult } from '../helpers/vm-tenant-cli';

jest.setTimeout(120_000);

describe('vm-tenant CLI', () => {
  let stack: TestStack;
  let home: string;
  const outputs: string[] = [];

  /** Runs the real CLI with only the environment given (plus PATH and an empty HOME). */
  async function cli(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
    const result = await runVmTenantCli(args, home, env);
    outputs.push(result.stdout, result.stderr);
    return result;
  }
  const asAdmin = () => ({ VM_TENANT_URL: stack.apiUrl, VM_TENANT_TOKEN: stack.adminToken });
  const json = (result: CliResult) => JSON.parse(result.stdout) as Record<string, any>;
  const jsonLines = (result: CliResult) =>
    result.stdout
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, any>);

  beforeAll(async () => {
    stack = await startTestStack();
    home = await mkdtemp(path.join(tmpdir(), 'vm-tenant-cli-'));
  });
  afterAll(async () => {
    await stack?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('when the admin manages a tenant and its tokens, then create, get, list, update, issue, list and revoke answer what the API holds', async () => {
    const tenantId = uniqueName('cli')
      .toLowerCase()
      .replace(/[^a-z0-9-]/g, '-');
    const created = await cli(
      [
        '--output',
        'json',
        'tenants',
        'create',
        tenantId,
        '--display-name',
        'CLI Corp',
        '--max-vms',
        '3',
        '--storage-quota-gb',
        '50',
        '--api-rate-limit-rpm',
        '600',
      ],
      asAdmin(),
    );
    expect(created).toMatchObject({ code: 0 });
    expect(json(created)).toMatchObject({ tenant_id: tenantId, display_name: 'CLI Corp', max_vms: 3 });

    const got = await cli(['tenants', 'get', tenantId], asAdmin());
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(new RegExp(`^tenant_id\\s+${tenantId}$`, 'm'));

    const listed = await cli(['--output', 'json', 'tenants', 'list', '--all', '--limit', '2'], asAdmin());
    expect(listed.code).toBe(0);
    expect(jsonLines(listed).map((t) => t.tenant_id)).toContain(tenantId);

    const updated = await cli(['--output', 'json', 'tenants', 'update', tenantId, '--max-vms', '5'], asAdmin());
    expect(updated.code).toBe(0);
    expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).body.max_vms).toBe(5);

    await writeFile(path.join(home, 'id_ed25519.pub'), `${SAMPLE_PUBKEY}\n`);
    const issued = await cli(
      [
        '--output',
        'json',
        'tokens',
        'issue',
        tenantId,
        '--subject-pubkey',
        `@${path.join(home, 'id_ed25519.pub')}`,
        '--scope',
        'vm:read',
        '--expires-in',
        '3600',
      ],
      asAdmin(),
    );
    expect(issued.code).toBe(0);
    const token = json(issued);
    expect(token.token).toMatch(/^vmt_/);
    expect((await stack.request('GET', '/v1/vms', { token: token.token })).status).toBe(200);

    const tokens = await cli(['tokens', 'list', tenantId], asAdmin());
    expect(tokens.code).toBe(0);
    expect(tokens.stdout).toContain(token.token_id);
    expect(tokens.stdout).not.toContain(token.token);

    const revoked = await cli(['--output', 'json', 'tokens', 'revoke', tenantId, token.token_id], asAdmin());
    expect(revoked.code).toBe(0);
    expect(json(revoked).revoked_token_ids).toContain(token.token_id);
    expect((await stack.request('GET', '/v1/vms', { token: token.token })).status).toBe(401);

    const deleted = await cli(['tenants', 'delete', tenantId], asAdmin());
    expect(deleted.code).toBe(0);
    expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).status).toBe(404);
  });

  test('when a VM is spawned and destroyed with --wait, then the CLI shows each status until it is running, then gone', async () => {
    const { token } = await createTenant(stack);
    const env = { VM_TENANT_URL: stack.apiUrl, VM_TENANT_TOKEN: token };
    const spawned = await cli(
      [
        '--output',
        'json',
        'vms',
        'spawn',
        '--vcpus',
        '1',
        '--memory-mb',
        '512',
        '--storage-gb',
        '5',
        '--image',
        'debian-12',
        '--name',
        'web-1',
        '--wait',
        '--timeout',
        '60',
      ],
      env,
    );
    expect(spawned.code).toBe(0);
    const vm = json(spawned);
    expect(vm).toMatchObject({ status: 'running', name: 'web-1' });
    expect(spawned.stderr).toContain(`vm ${vm.vm_id}: running`);
    expect((await stack.request('GET', `/v1/vms/${vm.vm_id}`, { token })).body.status).toBe('running');

    const table = await cli(['vms', 'list'], env);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^VM_ID\s+NAME\s+STATUS/);
    expect(table.stdout).toMatch(new RegExp(`^${vm.vm_id}\\s+web-1\\s+running`, 'm'));

    const destroyed = await cli(['--output', 'json', 'vms', 'destroy', vm.vm_id, '--wait', '--timeout', '60'], env);
    expect(destroyed.code).toBe(0);
    expect(json(destroyed).status).toBe('destroyed');
    expect(destroyed.stderr).toContain(`vm ${vm.vm_id}: destroyed`);
    expect((await stack.request('GET', `/v1/vms/${vm.vm_id}`, { token })).body.status).toBe('destroyed');
  });

  test('when the API answers a problem, then the CLI prints its title, detail and code and exits 1', async () => {
    const missing = await cli(['tenants', 'get', 'no-such-tenant'], asAdmin());
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: Tenant not found$/m);
    expect(missing.stderr).toMatch(/^detail: .+/m);
    expect(missing.stderr).toMatch(/^code: tenant_not_found \(HTTP 404\)$/m);
    expect(missing.stdout).toBe('');

    const { token } = await createTenant(stack, { max_vms: 1 });
    const env = { VM_TENANT_URL: stack.apiUrl, VM_TENANT_TOKEN: token };
    const spawn = ['vms', 'spawn', '--vcpus', '1', '--memory-mb', '512', '--storage-gb', '5', '--image', 'debian-12'];
    expect((await cli(spawn, env)).code).toBe(0);
    const over = await cli(spawn, env);
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(/^code: quota_exceeded \(HTTP 429\)$/m);

    const invalid = await cli(
      ['tenants', 'create', 'Bad_Id', '--display-name', 'x', '--max-vms', '1', '--storage-quota-gb', '1', '--api-rate-limit-rpm', '1'],
      asAdmin(),
    );
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toMatch(/^code: invalid_request \(HTTP 400\)$/m);
    expect(invalid.stderr).toMatch(/^ {2}tenant_id: .+/m);

    const unauthenticated = await cli(['vms', 'list'], { VM_TENANT_URL: stack.apiUrl, VM_TENANT_TOKEN: 'vmt_not-a-token' });
    expect(unauthenticated.code).toBe(1);
    expect(unauthenticated.stderr).toMatch(/^code: invalid_token \(HTTP 401\)$/m);
  });

  test('when the command is misused or the API cannot be reached, then it says so and exits non-zero', async () => {
    const usage = await cli(['vms', 'spawn', '--vcpus', 'many'], asAdmin());
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--vcpus/);

    const closedPort = await getFreePort();
    const unreachable = await cli(['tenants', 'list'], { VM_TENANT_URL: `http://127.0.0.1:${closedPort}`, VM_TENANT_TOKEN: stack.adminToken });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^error: cannot reach the API at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/m);
    expect(unreachable.stderr).toMatch(/^code: api_unreachable$/m);

    const nothing = await cli(['tenants', 'list']);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toMatch(/^code: no_url$/m);
  });

  test('when the URL and token come from a profile file, then it is used only with mode 0600, flags win over it, and the token is never printed', async () => {
    const profile = path.join(home, 'profile.json');
    await writeFile(profile, JSON.stringify({ url: stack.apiUrl, token: stack.adminToken }));
    await chmod(profile, 0o644);
    const insecure = await cli(['--profile', profile, 'tenants', 'list']);
    expect(insecure.code).toBe(1);
    expect(insecure.stderr).toMatch(/^code: profile_insecure$/m);
    expect(insecure.stderr).toContain('chmod 600');

    await chmod(profile, 0o600);
    const viaProfile = await cli(['--profile', profile, '--output', 'json', 'tenants', 'list']);
    expect(viaProfile.code).toBe(0);
    // The default location, ~/.config/vm-tenant/profile.json, is read the same way.
    const defaultProfile = path.join(home, '.config', 'vm-tenant', 'profile.json');
    await mkdir(path.dirname(defaultProfile), { recursive: true });
    await writeFile(defaultProfile, JSON.stringify({ url: stack.apiUrl, token: stack.adminToken }), { mode: 0o600 });
    expect((await cli(['tenants', 'list'])).code).toBe(0);
    // A flag wins over the profile: a wrong token on the command line is refused.
    const flagWins = await cli(['--token', 'vmt_wrong', 'tenants', 'list']);
    expect(flagWins.code).toBe(1);
    expect(flagWins.stderr).toMatch(/^code: invalid_token/m);

    // Nothing any run printed carries the admin token or a tenant token it was given.
    const everything = outputs.join('\n');
    expect(everything).not.toContain(stack.adminToken);
    expect(everything).not.toContain(stack.adminToken.slice(4));
  });

  test('when a tenant reads and verifies its audit trail, then it gets its own entries and the chain verifies; without a signed checkpoint, verify says why and fails', async () => {
    const { tenantId, token } = await createTenant(stack);
    const env = { VM_TENANT_URL: stack.apiUrl, VM_TENANT_TOKEN: token };
    const read = await cli(['--output', 'json', 'audit', 'read', '--all'], env);
    expect(read.code).toBe(0);
    const entries = jsonLines(read);
    expect(entries.map((e) => e.event_type)).toEqual(['TENANT_CREATED', 'TOKEN_ISSUED']);
    expect(entries.every((e) => e.tenant_id === tenantId)).toBe(true);

    // The test stack signs no checkpoints: the proof route answers 409 not_anchored_yet.
    const strict = await cli(['audit', 'verify'], env);
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^code: not_anchored_yet \(HTTP 409\)$/m);
    const chainOnly = await cli(['--output', 'json', 'audit', 'verify', '--chain-only'], env);
    expect(chainOnly.code).toBe(0);
    expect(json(chainOnly)).toEqual({ ok: true, entries: 2, proofs: 0, prior: false });
  });
});
