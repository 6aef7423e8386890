import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './tables';

// bigint columns (seq) come back as strings; counts and ints stay numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => value);

export interface DatabaseOptions {
  max?: number;
  applicationName?: string;
}

export function createPgPool(connectionString: string, options: DatabaseOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'vm-tenant',
    // Queue for a connection rather than fail fast: ledger appends serialise on one lock, so a burst
    // of requests can hold every connection for seconds, and a burst must never surface as a 5xx.
    connectionTimeoutMillis: 30_000,
  });
  // A dropped connection must not crash the process; the next query gets a fresh one.
  pool.on('error', () => undefined);
  return pool;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPgPool(connectionString, options) }) });
}
