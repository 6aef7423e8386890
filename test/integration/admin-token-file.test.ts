/**
 * Issue 9, item 5: the generated admin token file is checked before it is trusted, and a bad one
 * stops the API's start with a message naming the file and what is wrong.
 */
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { ensureAdminToken } from '../../src/auth/admin-bootstrap';
import { generateToken } from '../../src/auth/token-format';
import { createDatabase } from '../../src/db/database';
import type { Database } from '../../src/db/tables';
import { startApiProcess } from '../helpers/api-process';
import { testConfig } from '../helpers/test-env';

describe('admin token file', () => {
  let db: Kysely<Database>;
  const dirs: string[] = [];
  beforeAll(() => {
    db = createDatabase(testConfig().databaseUrl, { max: 2 });
  });
  afterAll(async () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await db.destroy();
  });

  function dataDir(): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'admin-token-'));
    dirs.push(dir);
    return dir;
  }

  function withTokenFile(content: string, mode = 0o600): { dir: string; file: string } {
    const dir = dataDir();
    const file = path.join(dir, 'admin-token');
    writeFileSync(file, content, { mode });
    chmodSync(file, mode);
    return { dir, file };
  }

  const start = (dir: string) => ensureAdminToken(db, { adminToken: undefined, dataDir: dir, now: new Date() });

  test('when no file exists, then one is generated with mode 0600, owned by the process user, holding a well-formed token, and a second start accepts it', async () => {
    const dir = dataDir();
    expect(await start(dir)).toMatchObject({ source: 'file-generated' });
    const stats = statSync(path.join(dir, 'admin-token'));
    expect(stats.mode & 0o777).toBe(0o600);
    expect(stats.uid).toBe(process.getuid!());
    expect(await start(dir)).toMatchObject({ source: 'file-existing' });
  });

  test.each([
    ['readable by group and others (0644)', () => withTokenFile(`${generateToken()}\n`, 0o644), /has mode 0644; it must be 0600/],
    ['writable by group (0620)', () => withTokenFile(`${generateToken()}\n`, 0o620), /has mode 0620; it must be 0600/],
    ['not in the token format', () => withTokenFile('not-a-token-but-long-enough-to-look-like-one\n'), /does not hold a token in the vmt_ format/],
    ['a token with a wrong checksum', () => withTokenFile(`${generateToken().slice(0, -1)}0\n`), /does not hold a token in the vmt_ format/],
    ['empty', () => withTokenFile(''), /does not hold a token in the vmt_ format/],
    [
      'a symlink to a good file',
      () => {
        const target = withTokenFile(`${generateToken()}\n`);
        const dir = dataDir();
        symlinkSync(target.file, path.join(dir, 'admin-token'));
        return { dir, file: path.join(dir, 'admin-token') };
      },
      /is not a regular file/,
    ],
    [
      'owned by another user',
      () => {
        const made = withTokenFile(`${generateToken()}\n`);
        chownSync(made.file, 65534, 65534);
        return made;
      },
      /is owned by uid 65534, not by this process's user/,
    ],
  ])('when the file is %s, then the start is refused with a message naming the file and the problem', async (_label, make, problem) => {
    if (process.getuid!() !== 0 && String(problem).includes('owned')) return; // chown needs root
    const { dir, file } = make();
    const error = await start(dir).then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.name).toBe('AdminTokenFileError');
    expect(error?.message).toContain(file);
    expect(error?.message).toMatch(problem);
  });

  test('when the API process starts with a bad admin token file, then it exits non-zero naming the file and the problem, and never serves', async () => {
    const { dir, file } = withTokenFile(`${generateToken()}\n`, 0o644);
    const failure = await startApiProcess({ DATA_DIR: dir, LOG_LEVEL: 'warn', API_METRICS_PORT: '0' }).then(
      async (api) => {
        await api.stop();
        return null;
      },
      (e: Error) => e,
    );
    expect(failure?.message).toMatch(/^api exited with code 1 while starting/);
    expect(failure?.message).toContain('api failed to start');
    expect(failure?.message).toContain(`admin token file ${file} has mode 0644; it must be 0600`);
  }, 60_000);
});
