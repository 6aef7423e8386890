import { accessSync, constants } from 'node:fs';
import type { Env } from '../shared/env-readers';

/** Throws `fail(...)` naming `label` unless `file` can be read now (a mounted secret, a certificate). */
export function assertReadable(label: string, file: string, fail: (message: string) => Error): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw fail(`${label}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code})`);
  }
}

/** The path in the variable `key`, which must be readable at start; undefined when the variable is unset. */
export function readableFileFromEnv(env: Env, key: string, fail: (message: string) => Error): string | undefined {
  const value = env[key];
  if (value === undefined || value === '') return undefined;
  assertReadable(key, value, fail);
  return value;
}
