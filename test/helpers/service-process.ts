import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { spawnManaged, type ManagedChild } from '../../src/devstack/child-process';

const ROOT = path.resolve(__dirname, '../..');

/**
 * One of our entry points (`src/api/server.ts`, `src/workers/worker.ts`) as its own process on
 * exactly `env` (plus PATH, and the metrics endpoints off so processes never share a port), for
 * tests of the real startup path. The caller stops it.
 */
export function spawnService(name: string, entry: string, env: Record<string, string>): ManagedChild {
  return spawnManaged(name, process.execPath, ['--import', 'tsx', path.join(ROOT, entry)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, API_METRICS_PORT: '0', WORKER_METRICS_PORT: '0', TEMPORAL_SDK_METRICS_PORT: '0', ...env },
    onLine: () => undefined,
    keepLines: 200,
  });
}

/** The first output line that matches, once the process wrote it; fails with the output if it exits or times out first. */
export async function waitForLine(child: ManagedChild, pattern: RegExp, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = child.recentOutput().find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (child.hasExited() || Date.now() > deadline) throw new Error(`no line matching ${pattern} from ${child.name}:\n${child.recentOutput().join('\n')}`);
    await sleep(100);
  }
}

/** The exit code and the fatal line of a process expected to give up starting (null code: still running after the wait). */
export async function failedStart(child: ManagedChild, timeoutMs = 60_000): Promise<{ code: number | null; message: string }> {
  let timer: NodeJS.Timeout | undefined;
  const exit = await Promise.race([child.exited, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]);
  clearTimeout(timer);
  const fatal = child.recentOutput().find((line) => line.includes('"level":"fatal"')) ?? child.recentOutput().join('\n');
  return { code: exit?.code ?? null, message: fatal };
}
