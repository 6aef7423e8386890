import { sql, type Kysely } from 'kysely';
import type { Database } from './tables';
import { describeConnectionFailure } from '../connections/connection-failure';

/** A failed first query at start, naming the dependency, the server, the login and the cause. */
export class DatabaseConnectError extends Error {
  override readonly name = 'DatabaseConnectError';
}

function describeTarget(connectionString: string): string {
  const url = new URL(connectionString);
  const sslmode = url.searchParams.get('sslmode') ?? (url.searchParams.has('sslrootcert') ? 'verify-full' : null);
  return `${url.host}${url.pathname} as ${decodeURIComponent(url.username) || '(default user)'} (${sslmode ? `sslmode=${sslmode}` : 'no sslmode'})`;
}

/**
 * One query at start. pg connects lazily, so without it a wrong CA or password would surface only
 * in the first request (API) or in the event relay's retries (worker); here it stops the start
 * with `postgres at <host>/<db> as <user> (sslmode=…): <cause>`.
 */
export async function checkDatabaseConnection(db: Kysely<Database>, connectionString: string): Promise<void> {
  try {
    await sql`select 1`.execute(db);
  } catch (error) {
    throw new DatabaseConnectError(`postgres at ${describeTarget(connectionString)}: ${describeConnectionFailure(error)}`, { cause: error });
  }
}
