import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './tables';

// bigint columns (seq) come back as strings; counts and ints stay numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => value);

export interface DatabaseOptions {
  max?: number;
  applicationName?: string;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'vm-tenant',
    connectionTimeoutMillis: 5_000,
  });
  // A dropped connection must not crash the process; the next query gets a fresh one.
  pool.on('error', () => undefined);
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}
