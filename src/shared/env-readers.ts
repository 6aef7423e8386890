import { accessSync, constants } from 'node:fs';

export type Env = Record<string, string | undefined>;

/** Throws `fail(...)` naming `label` unless `file` can be read now (a mounted secret, a certificate). */
export function assertReadable(label: string, file: string, fail: (message: string) => Error): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw fail(`${label}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code})`);
  }
}

/**
 * Readers of environment variables that fail fast with a message naming the variable, each
 * program raising its own error type (ConfigError, SimulatorConfigError).
 */
export function envReaders(fail: (message: string) => Error) {
  return {
    str(env: Env, key: string, fallback: string): string {
      const value = env[key];
      return value === undefined || value === '' ? fallback : value;
    },
    int(env: Env, key: string, fallback: number, min: number, max: number): number {
      const raw = env[key];
      if (raw === undefined || raw === '') return fallback;
      if (!/^\d+$/.test(raw)) throw fail(`${key} must be a whole number, got ${JSON.stringify(raw)}`);
      const value = Number(raw);
      if (value < min || value > max) throw fail(`${key} must be between ${min} and ${max}, got ${value}`);
      return value;
    },
    /** A path that must be readable at start; undefined when the variable is unset. */
    file(env: Env, key: string): string | undefined {
      const value = env[key];
      if (value === undefined || value === '') return undefined;
      assertReadable(key, value, fail);
      return value;
    },
  };
}
