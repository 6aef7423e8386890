import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createTenant, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/**
 * The client and the CLI as packages a caller installs (issue 22): `npm run build:packages`, then
 * `npm pack` of packages/client and packages/cli, installed from the tarballs into a scratch project
 * under the system's temporary directory, outside the repository, so nothing there resolves from the
 * repository's sources or node_modules. Everything runs there with PATH (without the repository's
 * folders) and HOME alone, against a real stack: the API and the worker of this process, this run's
 * Temporal, Postgres and NATS, and the fleet simulator.
 */
jest.setTimeout(60_000);

const ROOT = path.resolve(__dirname, '../..');
const documentVersion = (JSON.parse(readFileSync(path.join(ROOT, 'src/client/openapi.json'), 'utf8')) as { info: { version: string } }).info.version;
const repositoryManifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };

/** The directories of PATH outside the repository (an `npx jest` puts node_modules/.bin first). */
const CLEAN_PATH = (process.env.PATH ?? '')
  .split(path.delimiter)
  .filter((dir) => dir !== '' && path.relative(ROOT, path.resolve(dir)).startsWith('..'))
  .join(path.delimiter);

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program with only the environment given; answers its exit code and output, never throws. */
function run(file: string, args: readonly string[], cwd: string, env: Record<string, string>, timeoutMs = 90_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(file, [...args], { cwd, env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

async function mustRun(what: string, file: string, args: readonly string[], cwd: string, env: Record<string, string>): Promise<string> {
  const result = await run(file, args, cwd, env, 150_000);
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

interface Packed {
  name: string;
  version: string;
  filename: string;
  files: Array<{ path: string }>;
}

const work = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-packages-'));
const tarballs = path.join(work, 'tarballs');
const project = path.join(work, 'project');
/** HOME of what runs in the project: empty (no CLI profile, no npm settings). npm itself keeps the user's HOME, for its cache. */
const home = path.join(work, 'home');
const inProject = { PATH: CLEAN_PATH, HOME: home };

let stack: TestStack;
let packed: Packed[] = [];

/** Builds and packs both packages and installs the tarballs into the scratch project. */
async function buildPackInstall(): Promise<void> {
  for (const dir of [tarballs, project, home]) mkdirSync(dir, { recursive: true });
  await mustRun('scripts/build-packages.js', process.execPath, [path.join(ROOT, 'scripts/build-packages.js')], ROOT, { PATH: CLEAN_PATH, HOME: os.homedir() });
  const npmEnv = { PATH: CLEAN_PATH, HOME: os.homedir() };
  packed = JSON.parse(
    await mustRun('npm pack', 'npm', ['pack', './packages/client', './packages/cli', '--pack-destination', tarballs, '--json'], ROOT, npmEnv),
  ) as Packed[];
  writeFileSync(path.join(project, 'package.json'), `${JSON.stringify({ name: 'scratch', version: '0.0.0', private: true }, null, 2)}\n`);
  const files = packed.map((pack) => path.join(tarballs, pack.filename));
  await mustRun('npm install of the tarballs', 'npm', ['install', ...files, '--prefer-offline', '--no-audit', '--no-fund'], project, npmEnv);
}

beforeAll(async () => {
  // Side by side; a stack that started is kept (and closed after) even when the packages failed.
  const [started, built] = await Promise.allSettled([startTestStack(), buildPackInstall()]);
  if (started.status === 'fulfilled') stack = started.value;
  for (const outcome of [started, built]) if (outcome.status === 'rejected') throw outcome.reason;
}, 170_000);

afterAll(async () => {
  await stack?.close();
  rmSync(work, { recursive: true, force: true });
});

const installed = (name: string) => JSON.parse(readFileSync(path.join(project, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, any>;

describe('the client and the CLI as installable packages', () => {
  test('when packed, then the tarballs hold built JavaScript and declarations, no TypeScript of the repository, and both versions are the API document version', () => {
    expect(packed.map((pack) => pack.name).sort()).toEqual(['@vm-tenant/cli', '@vm-tenant/client']);
    for (const pack of packed) {
      const paths = pack.files.map((file) => file.path);
      expect(paths.filter((file) => file.startsWith('src/') || (file.endsWith('.ts') && !file.endsWith('.d.ts')))).toEqual([]);
    }
    const client = packed.find((pack) => pack.name === '@vm-tenant/client')!;
    expect(client.files.map((file) => file.path)).toEqual(
      expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'dist/schema.d.ts', 'dist/openapi.json']),
    );
    const cli = packed.find((pack) => pack.name === '@vm-tenant/cli')!;
    expect(cli.files.map((file) => file.path).sort()).toEqual(['README.md', 'dist/THIRD-PARTY-NOTICES.txt', 'dist/vm-tenant.js', 'package.json']);
    // The bundle reaches nothing of the repository by path.
    expect(readFileSync(path.join(project, 'node_modules/@vm-tenant/cli/dist/vm-tenant.js'), 'utf8')).not.toContain(ROOT);

    // The document's info.version as semver: "1" is 1.0.0 (npm publishes semver only).
    const [major, minor = '0', patch = '0'] = documentVersion.split('.');
    const expected = `${major}.${minor}.${patch}`;
    expect(installed('@vm-tenant/client').version).toBe(expected);
    expect(installed('@vm-tenant/cli').version).toBe(expected);
    expect(JSON.parse(readFileSync(path.join(project, 'node_modules/@vm-tenant/client/dist/openapi.json'), 'utf8')).info.version).toBe(documentVersion);
    expect(installed('@vm-tenant/client').dependencies).toEqual({ 'openapi-fetch': repositoryManifest.dependencies['openapi-fetch'] });
    expect(installed('@vm-tenant/cli').dependencies).toBeUndefined();
  });

  test('when a TypeScript caller compiles against the installed client, then paths and bodies are typed, and an ES module imports it by name', async () => {
    writeFileSync(
      path.join(project, 'typed.ts'),
      `import { createVmTenantClient } from '@vm-tenant/client';

const api = createVmTenantClient({ baseUrl: 'http://127.0.0.1:9221', token: 'vmt_example' });

export async function spawn(): Promise<string> {
  const { data, error } = await api.POST('/v1/vms', { body: { vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12' } });
  if (error) return error.code;
  return data.vm_id;
}

export function refused(): void {
  // @ts-expect-error the API document has no such path
  void api.GET('/v1/no-such-path');
  // @ts-expect-error vcpus is a number
  void api.POST('/v1/vms', { body: { vcpus: 'one', memory_mb: 512, storage_gb: 5, image: 'debian-12' } });
}
`,
    );
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['ES2022', 'DOM'], types: [] },
        files: ['typed.ts'],
      }),
    );
    // The repository's compiler, as a tool: what it compiles and every type it reads resolve from the project.
    const compiled = await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], project, inProject);
    expect(compiled).toMatchObject({ code: 0, stdout: '' });

    writeFileSync(
      path.join(project, 'esm.mjs'),
      `import { createVmTenantClient, DEFAULT_TIMEOUT_MS } from '@vm-tenant/client';\nconsole.log(typeof createVmTenantClient, DEFAULT_TIMEOUT_MS);\n`,
    );
    const imported = await run(process.execPath, ['esm.mjs'], project, inProject);
    expect(imported).toMatchObject({ code: 0, stdout: 'function 30000\n' });
  });

  test('when a script of the project requires the installed client and spawns a VM, then it is answered 202 and the VM reaches running', async () => {
    const { token } = await createTenant(stack);
    writeFileSync(
      path.join(project, 'spawn.js'),
      `const { createVmTenantClient } = require('@vm-tenant/client');
const [baseUrl, token] = process.argv.slice(2);

(async () => {
  const api = createVmTenantClient({ baseUrl, token });
  const spawned = await api.POST('/v1/vms', { body: ${JSON.stringify({ ...SMALL_VM, name: 'from-client-package' })} });
  if (spawned.error) throw new Error(JSON.stringify(spawned.error));
  const vmId = spawned.data.vm_id;
  let status = spawned.data.status;
  for (const deadline = Date.now() + 30000; status !== 'running' && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const read = await api.GET('/v1/vms/{vm_id}', { params: { path: { vm_id: vmId } } });
    if (read.error) throw new Error(JSON.stringify(read.error));
    status = read.data.status;
  }
  console.log(JSON.stringify({ spawnStatus: spawned.response.status, vmId, status }));
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
`,
    );
    const result = await run(process.execPath, ['spawn.js', stack.apiUrl, token], project, inProject);
    expect(result).toMatchObject({ code: 0, stderr: '' });
    const outcome = JSON.parse(result.stdout) as { spawnStatus: number; vmId: string; status: string };
    expect(outcome).toMatchObject({ spawnStatus: 202, status: 'running' });
    expect((await stack.request('GET', `/v1/vms/${outcome.vmId}`, { token })).body).toMatchObject({ name: 'from-client-package', status: 'running' });
  });

  test('when the installed vm-tenant CLI spawns a VM with --wait, then it exits 0 with the VM running', async () => {
    const { token } = await createTenant(stack);
    const cli = path.join(project, 'node_modules/.bin/vm-tenant');
    const args = ['--output', 'json', 'vms', 'spawn', '--vcpus', '1', '--memory-mb', '512', '--storage-gb', '5', '--image', 'debian-12'];
    const result = await run(cli, [...args, '--name', 'from-cli-package', '--wait', '--timeout', '30'], project, {
      ...inProject,
      VM_TENANT_URL: stack.apiUrl,
      VM_TENANT_TOKEN: token,
    });
    expect(`exit ${result.code}\n${result.stderr}`).toMatch(/^exit 0\n/);
    const vm = JSON.parse(result.stdout) as { vm_id: string; status: string };
    expect(vm).toMatchObject({ name: 'from-cli-package', status: 'running' });
    expect((await stack.request('GET', `/v1/vms/${vm.vm_id}`, { token })).body).toMatchObject({ name: 'from-cli-package', status: 'running' });
  });
});
