/**
 * Issue 11, part 3: the `vm-tenant` CLI signs its requests with `--key` (an OpenSSH key made by
 * ssh-keygen, or a PEM PKCS#8 file), so a key-bound token works from the command line; run as a
 * child process against a running stack.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTenant, startTestStack, type TestStack } from '../helpers/test-stack';
import { runVmTenantCli, type CliResult } from '../helpers/vm-tenant-cli';

jest.setTimeout(120_000);

describe('vm-tenant CLI with a signing key', () => {
  let stack: TestStack;
  let home: string;
  let sshKey: string;

  const cli = (args: readonly string[], env: Record<string, string>): Promise<CliResult> => runVmTenantCli(args, home, { VM_TENANT_URL: stack.apiUrl, ...env });

  /** A key made the way a user makes one: ssh-keygen -t ed25519, no passphrase. */
  function sshKeygen(name: string, passphrase = ''): string {
    const file = path.join(home, name);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'cli-test', '-f', file]);
    return file;
  }

  async function issueBound(tenantToken: string, tenantId: string, pubkeyArgument: string, scope = 'service:tenant-admin'): Promise<Record<string, string>> {
    const issued = await cli(
      ['--output', 'json', 'tokens', 'issue', tenantId, '--subject-pubkey', pubkeyArgument, '--scope', scope, '--expires-in', '1800', '--bound'],
      { VM_TENANT_TOKEN: tenantToken },
    );
    expect(issued).toMatchObject({ code: 0, stderr: '' });
    return JSON.parse(issued.stdout) as Record<string, string>;
  }

  beforeAll(async () => {
    stack = await startTestStack({ withWorker: false });
    home = await mkdtemp(path.join(tmpdir(), 'vm-tenant-cli-key-'));
    sshKey = sshKeygen('id_ed25519');
  });
  afterAll(async () => {
    await stack?.close();
    if (home) await rm(home, { recursive: true, force: true });
  });

  test('when a token bound to an ssh-keygen key is used with --key, then commands work; without the key they fail with signature_required', async () => {
    const { tenantId, token: admin } = await createTenant(stack);
    const bound = await issueBound(admin, tenantId, `@${sshKey}.pub`);
    expect(bound.key_binding).toBe('required');

    const withoutKey = await cli(['vms', 'list'], { VM_TENANT_TOKEN: bound.token! });
    expect(withoutKey.code).toBe(1);
    expect(withoutKey.stderr).toContain('code: signature_required (HTTP 401)');

    const listed = await cli(['--key', sshKey, 'vms', 'list'], { VM_TENANT_TOKEN: bound.token! });
    expect(listed).toMatchObject({ code: 0, stderr: '' });

    // A request with a body, signed: the bound token issues a sub-token, bound too.
    const device = sshKeygen('device_ed25519');
    const sub = await cli(
      ['--key', sshKey, '--output', 'json', 'tokens', 'issue', tenantId, '--subject-pubkey', `@${device}.pub`, '--scope', 'vm:read', '--expires-in', '600'],
      { VM_TENANT_TOKEN: bound.token! },
    );
    expect(sub).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(sub.stdout)).toMatchObject({ key_binding: 'required', scope: 'vm:read' });
  });

  test('when the key comes from VM_TENANT_KEY as a PEM PKCS#8 file, then it signs; a key other than the bound one gets signature_key_mismatch', async () => {
    const { tenantId, token: admin } = await createTenant(stack);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pemFile = path.join(home, 'holder.pem');
    await writeFile(pemFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    const bound = await issueBound(admin, tenantId, publicKey.export({ format: 'pem', type: 'spki' }).toString(), 'vm:read');

    expect(await cli(['vms', 'list'], { VM_TENANT_TOKEN: bound.token!, VM_TENANT_KEY: pemFile })).toMatchObject({ code: 0 });
    const other = await cli(['vms', 'list'], { VM_TENANT_TOKEN: bound.token!, VM_TENANT_KEY: sshKey });
    expect(other.code).toBe(1);
    expect(other.stderr).toContain('code: signature_key_mismatch (HTTP 401)');
  });

  test('when the key file is missing, passphrase-protected or not Ed25519, then the CLI says so and sends nothing', async () => {
    const { token } = await createTenant(stack);
    const missing = await cli(['--key', path.join(home, 'nope'), 'vms', 'list'], { VM_TENANT_TOKEN: token });
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.stderr).toContain('code: key_unreadable');

    const encrypted = await cli(['--key', sshKeygen('locked_ed25519', 'secret passphrase'), 'vms', 'list'], { VM_TENANT_TOKEN: token });
    expect(encrypted.stderr).toContain('code: key_encrypted');

    const rsaFile = path.join(home, 'rsa.pem');
    await writeFile(rsaFile, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const rsa = await cli(['--key', rsaFile, 'vms', 'list'], { VM_TENANT_TOKEN: token });
    expect(rsa.stderr).toContain('code: key_not_ed25519');
    expect(rsa.stderr).not.toContain(token);
  });

  test('when the profile names the key, then the CLI signs with it', async () => {
    const { tenantId, token: admin } = await createTenant(stack);
    const bound = await issueBound(admin, tenantId, `@${sshKey}.pub`, 'vm:read');
    const profile = path.join(home, 'profile.json');
    await writeFile(profile, JSON.stringify({ url: stack.apiUrl, token: bound.token, key: sshKey }), { mode: 0o600 });
    expect(await cli(['--profile', profile, 'vms', 'list'], {})).toMatchObject({ code: 0, stderr: '' });
  });

  test('when an unbound token is used with --key, then the signature is harmless and the command works', async () => {
    const { token } = await createTenant(stack);
    expect(await cli(['--key', sshKey, 'vms', 'list'], { VM_TENANT_TOKEN: token })).toMatchObject({ code: 0 });
  });
});
