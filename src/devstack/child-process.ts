import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedChild {
  readonly name: string;
  readonly pid: number | undefined;
  /** Settles once the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** The last lines the child printed (stdout and stderr), for error messages. */
  recentOutput(): string[];
  /** SIGTERM, then SIGKILL when it is still running after `timeoutMs`. Idempotent. */
  stop(timeoutMs?: number): Promise<ChildExit>;
  /** SIGKILL at once: no shutdown code runs. */
  kill(): Promise<ChildExit>;
}

export interface SpawnManagedOptions {
  /** Environment of the child; defaults to the parent's. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * Receives every output line. Defaults to writing `[name] line` to the parent's
   * stdout/stderr. Pass `() => undefined` to stay quiet (recentOutput() still works).
   */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /**
   * Start the child in its own process group, so that a Ctrl-C in the terminal reaches
   * only the parent, which then stops children in the order it chooses.
   */
  detached?: boolean;
  /** How many output lines recentOutput() keeps. */
  keepLines?: number;
  /** Stop passing lines to onLine once stop() was called (for noisy shutdowns). */
  quietAfterStop?: boolean;
}

const COLORS = [36, 35, 33, 32, 34, 31];
let nextColor = 0;

/** A `[name]` prefix, coloured when the parent's stdout is a terminal. */
export function linePrefix(name: string): string {
  if (!process.stdout.isTTY) return `[${name}]`;
  const color = COLORS[nextColor++ % COLORS.length] ?? 36;
  return `\u001b[${color}m[${name}]\u001b[0m`;
}

/** Spawns a process whose output is read line by line and prefixed with its name. */
export function spawnManaged(name: string, command: string, args: readonly string[], options: SpawnManagedOptions = {}): ManagedChild {
  const prefix = linePrefix(name);
  const onLine =
    options.onLine ?? ((line: string, stream: 'stdout' | 'stderr') => (stream === 'stdout' ? process.stdout : process.stderr).write(`${prefix} ${line}\n`));
  const keep = options.keepLines ?? 50;
  const recent: string[] = [];

  const child: ChildProcess = spawn(command, [...args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });

  let stopRequested = false;
  const record = (stream: 'stdout' | 'stderr') => (line: string) => {
    recent.push(line);
    if (recent.length > keep) recent.shift();
    if (stopRequested && options.quietAfterStop) return;
    onLine(line, stream);
  };
  if (child.stdout) readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', record('stdout'));
  if (child.stderr) readline.createInterface({ input: child.stderr, crlfDelay: Infinity }).on('line', record('stderr'));

  let exitInfo: ChildExit | undefined;
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.once('error', (error) => {
      // spawn failure (e.g. ENOENT): there will be no 'exit' event.
      recent.push(`failed to start ${command}: ${error.message}`);
      if (exitInfo === undefined) {
        exitInfo = { code: 127, signal: null };
        resolve(exitInfo);
      }
    });
  });

  let stopping: Promise<ChildExit> | undefined;
  const signal = (sig: NodeJS.Signals): void => {
    if (exitInfo !== undefined || child.pid === undefined) return;
    try {
      // A detached child leads its own group: signal the group so its children stop too.
      if (options.detached) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };

  return {
    name,
    pid: child.pid,
    exited,
    hasExited: () => exitInfo !== undefined,
    recentOutput: () => [...recent],
    stop(timeoutMs = 10_000) {
      stopRequested = true;
      stopping ??= (async () => {
        if (exitInfo !== undefined) return exitInfo;
        signal('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const killed = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            signal('SIGKILL');
            resolve();
          }, timeoutMs);
        });
        await Promise.race([exited, killed]);
        clearTimeout(timer);
        return exited;
      })();
      return stopping;
    },
    kill() {
      signal('SIGKILL');
      return exited;
    },
  };
}

/** Describes how a child ended, for messages ("exited with code 1", "was killed by SIGKILL"). */
export function describeExit(exit: ChildExit): string {
  if (exit.signal) return `was killed by ${exit.signal}`;
  return `exited with code ${exit.code ?? '?'}`;
}
