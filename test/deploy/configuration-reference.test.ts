import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * docs/configuration.md is generated from src/config/config.ts (scripts/generate-config-reference.ts):
 * it must be what the generator writes now, name every variable loadConfig reads, and fail when
 * either side moves. The generator runs on a copy of the repository's sources for the failing cases.
 */
const ROOT = path.resolve(__dirname, '../..');
const GENERATOR = 'scripts/generate-config-reference.ts';

jest.setTimeout(120_000);

function generate(root: string, ...args: string[]): { status: number | null; stderr: string } {
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, GENERATOR), ...args], { cwd: root, encoding: 'utf8' });
  return { status: run.status, stderr: run.stderr };
}

/** A copy of what the generator reads (inside the repository, so it resolves node_modules), changed by `change`. */
function copyWith(change: (root: string) => void): string {
  const root = mkdtempSync(path.join(ROOT, '.test-data', 'config-reference-'));
  for (const dir of ['src', 'scripts', 'docs']) cpSync(path.join(ROOT, dir), path.join(root, dir), { recursive: true });
  for (const file of ['package.json', 'tsconfig.json']) cpSync(path.join(ROOT, file), path.join(root, file));
  change(root);
  return root;
}

const copies: string[] = [];
afterAll(() => copies.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('docs/configuration.md', () => {
  test('when the generator runs in check mode, then the page is what it would write', () => {
    expect(generate(ROOT, '--check')).toEqual({ status: 0, stderr: '' });
  });

  test('when reading the page, then it lists HOST and the event stream limits with their defaults, and the README links it', () => {
    const page = readFileSync(path.join(ROOT, 'docs/configuration.md'), 'utf8');
    expect(page).toMatch(/^\| `HOST` \| `127\.0\.0\.1` \| .*0\.0\.0\.0/m);
    expect(page).toMatch(/^\| `NATS_STREAM_MAX_BYTES` \| `1073741824` /m);
    expect(page).toMatch(/^\| `PORT` \| `9221` \(0–65535\) /m);
    expect(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).toContain('docs/configuration.md');
  });

  test('when a default changes in src/config/config.ts, then the check fails until the page is generated again', () => {
    const root = copyWith((r) => {
      const file = path.join(r, 'src/config/config.ts');
      writeFileSync(file, readFileSync(file, 'utf8').replace("int(env, 'PORT', 9221, 0, 65535)", "int(env, 'PORT', 9300, 0, 65535)"));
    });
    copies.push(root);
    expect(generate(root, '--check')).toMatchObject({ status: 1, stderr: expect.stringContaining('docs/configuration.md is stale') });
    expect(generate(root).status).toBe(0);
    expect(readFileSync(path.join(root, 'docs/configuration.md'), 'utf8')).toMatch(/^\| `PORT` \| `9300` /m);
  });

  test('when loadConfig reads a variable that no @env tag names, then the generator refuses', () => {
    const root = copyWith((r) => {
      const file = path.join(r, 'src/config/config.ts');
      writeFileSync(
        file,
        readFileSync(file, 'utf8').replace(
          "logLevel: str(env, 'LOG_LEVEL', 'info'),",
          "logLevel: str(env, 'LOG_LEVEL', str(env, 'LOG_LEVEL_FALLBACK', 'info')),",
        ),
      );
    });
    copies.push(root);
    expect(generate(root, '--check')).toMatchObject({ status: 1, stderr: expect.stringContaining('loadConfig reads LOG_LEVEL_FALLBACK, which no @env tag') });
  });
});
