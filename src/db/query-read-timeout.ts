import type pg from 'pg';

/** The message of pg's client-side `query_timeout` error (it has no code). */
export const QUERY_READ_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * After pg's client-side read timeout the query is still on the wire: the connection answers it
 * whenever the server wakes up, possibly a BEGIN that would leave the next borrower inside a stale
 * transaction. kysely releases connections without an error, so pg-pool would lend this one again.
 * `end()` marks the client ending at once (pg-pool drops an ending client when it comes back, and
 * this runs before kysely's release) and, with a query still unanswered, destroys the socket.
 */
export function discardConnectionOnReadTimeout(client: pg.PoolClient): void {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const result = query(...args);
    if (result instanceof Promise) {
      result.catch((error: unknown) => {
        if (error instanceof Error && error.message === QUERY_READ_TIMEOUT_MESSAGE) {
          client.end().catch(() => undefined);
        }
      });
    }
    return result;
  };
}
