import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The image's runtime stage (issue 22, item 6): the operator commands the docs tell an operator to
 * run in it (`service-fs verify` after a restore, `vm-tenant-events`) must run from what that stage
 * holds: the build output and bin/, no src/, and never through tsx. No container engine runs here,
 * so the stage's files are laid out as its COPY lines say, from a real `npm run build`, inside the
 * repository (the build output resolves its packages from node_modules, as the image's do).
 */
const ROOT = path.resolve(__dirname, '../..');
const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const stages = dockerfile.split(/^(?=FROM )/m).filter((stage) => stage.startsWith('FROM'));
const runtime = stages[stages.length - 1]!;

jest.setTimeout(600_000);

mkdirSync(path.join(ROOT, '.test-data'), { recursive: true });
const image = mkdtempSync(path.join(ROOT, '.test-data', 'image-'));
afterAll(() => rmSync(image, { recursive: true, force: true }));

/** Refuses to load tsx: a command that needs it fails here as it would without it. */
const NO_TSX = path.join(image, 'no-tsx.js');

beforeAll(() => {
  const build = spawnSync(process.execPath, [path.join(ROOT, 'scripts/build.js'), path.join(image, 'dist')], { cwd: ROOT, encoding: 'utf8' });
  if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stderr}`);
  // The runtime stage's own COPY lines (not the build stage's), repository files and the build output.
  for (const [, from, source] of runtime.matchAll(/^COPY (--from=\S+ )?(.+) \S+$/gm)) {
    for (const file of source!.split(/\s+/)) {
      if (from) continue; // COPY --from=build /app/dist: built above
      cpSync(path.join(ROOT, file), path.join(image, file), { recursive: true });
    }
  }
  writeFileSync(
    NO_TSX,
    `const Module = require('node:module');
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (/^tsx(\\/|$)/.test(request)) throw new Error('tsx was loaded: ' + request);
  return resolve.call(this, request, ...rest);
};
`,
  );
});

function run(bin: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--require', NO_TSX, path.join(image, 'bin', bin), ...args], {
    cwd: image,
    encoding: 'utf8',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('the runtime image', () => {
  test('when reading the Dockerfile, then every stage runs an even-numbered (LTS) Node of 22 or later, and the runtime stage copies bin/ beside dist/ and no sources', () => {
    const majors = [...dockerfile.matchAll(/^FROM node:(\d+)[-.\w]*/gm)].map((m) => Number(m[1]));
    expect(majors).toHaveLength(stages.length);
    for (const major of majors) {
      expect(major).toBeGreaterThanOrEqual(22);
      expect(major % 2).toBe(0);
    }
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^COPY bin \.\/bin$/m);
    expect(runtime).not.toMatch(/^COPY (src|tsconfig)/m);
    // The default HOST (127.0.0.1) would keep the API unreachable from outside its container.
    expect(runtime).toMatch(/^\s+HOST=0\.0\.0\.0 \\$/m);
  });

  test('when an operator runs service-fs in the image, then it runs from the build output, without tsx', () => {
    const help = run('service-fs.js', ['--help']);
    expect(help).toMatchObject({ status: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: service-fs <command>/);
    expect(help.stdout).toMatch(/\bverify\b/);
  });

  test('when an operator runs vm-tenant-events and vm-tenant in the image, then they run from the build output, without tsx', () => {
    expect(run('vm-tenant-events.js', ['--help'])).toMatchObject({ status: 0, stdout: expect.stringMatching(/^Usage: vm-tenant-events /) });
    expect(run('vm-tenant.js', ['--help'])).toMatchObject({ status: 0 });
  });

  test('when the image lacks the build output of a command, then the command fails rather than reaching for sources it does not have (the check can fail)', () => {
    rmSync(path.join(image, 'dist', 'cli', 'service-fs.js'));
    const result = run('service-fs.js', ['--help']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/tsx was loaded/);
  });
});
