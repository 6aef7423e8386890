import { assertReadable } from '../connections/readable-file';
import type { Env } from '../shared/env-readers';

const FILE_PARAMETERS = ['sslrootcert', 'sslcert', 'sslkey'] as const;

/**
 * A Postgres URL as node-postgres will use it. pg takes TLS settings from the URL only (it ignores
 * libpq's PGSSLROOTCERT), so a PGSSLROOTCERT in the environment becomes the URL's `sslrootcert`
 * unless the URL names one or says `sslmode=disable`. pg reads the files the URL names at every
 * new connection; checking them here stops the start naming the variable instead.
 */
export function postgresUrlWithTls(env: Env, key: string, value: string, fail: (message: string) => Error): string {
  const url = new URL(value);
  const rootCertFromEnv =
    env.PGSSLROOTCERT && !url.searchParams.has('sslrootcert') && url.searchParams.get('sslmode') !== 'disable' ? env.PGSSLROOTCERT : undefined;
  if (rootCertFromEnv) url.searchParams.set('sslrootcert', rootCertFromEnv);
  for (const parameter of FILE_PARAMETERS) {
    const file = url.searchParams.get(parameter);
    const label = parameter === 'sslrootcert' && rootCertFromEnv ? 'PGSSLROOTCERT' : `${key} ${parameter}`;
    if (file) assertReadable(label, file, fail);
  }
  return rootCertFromEnv ? url.toString() : value;
}
