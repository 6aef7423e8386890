import { sql, type Kysely } from 'kysely';
import type { Database } from './tables';
import { describeConnectionFailure } from '../connections/connection-failure';
import { waitUntilReachable, type WaitOptions } from '../connections/wait-until-reachable';

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
 * with `postgres at <host>/<db> as <user> (sslmode=…): <cause>`. A server that is not up (yet) is
 * waited for, with a warning at most every 30 s (waitUntilReachable).
 */
export async function checkDatabaseConnection(db: Kysely<Database>, connectionString: string, wait: WaitOptions = {}): Promise<void> {
  const target = `postgres at ${describeTarget(connectionString)}`;
  await waitUntilReachable(
    target,
    async () => {
      try {
        await sql`select 1`.execute(db);
      } catch (error) {
        throw new DatabaseConnectError(`${target}: ${describeConnectionFailure(error)}`, { cause: error });
      }
    },
    wait,
  );
}
