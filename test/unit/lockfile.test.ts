import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');

/** A fresh machine installs with `npm ci`: the lock file must pin every package, every platform's included. */
describe('package-lock.json', () => {
  test('when npm ci plans an install from the committed lock file, then it accepts it (no package missing or out of step)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-lock-'));
    try {
      for (const file of ['package.json', 'package-lock.json', '.npmrc']) cpSync(path.join(ROOT, file), path.join(dir, file));
      const output = execFileSync('npm', ['ci', '--dry-run', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 120_000,
      });
      expect(output).not.toMatch(/Missing:|Invalid:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
