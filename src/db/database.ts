import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { findCause } from '../shared/error-causes';
import { discardConnectionOnReadTimeout, QUERY_READ_TIMEOUT_MESSAGE } from './query-read-timeout';
import type { Database } from './tables';

// bigint columns (seq) come back as strings; counts and ints stay numbers.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => value);

export interface DatabaseOptions {
  max?: number;
  applicationName?: string;
  /**
   * Commit without waiting for the WAL flush. Only for data whose loss in a Postgres crash is
   * harmless (rate-limit counters); never for the ledger or VM records.
   */
  asynchronousCommit?: boolean;
  /**
   * Server-side bound of one statement (`statement_timeout`), and, one second later, of the wait for
   * its answer on this side (pg's `query_timeout`): a server that is hung (SIGSTOP, partition) never
   * cancels anything, so only the client's own timer ends the wait. Unset: no bound (migrations).
   */
  statementTimeoutMs?: number;
  /** How long a query waits for a pooled connection, or for a new one to connect (default 30 s). */
  acquireTimeoutMs?: number;
  /**
   * The server ends a session whose transaction stays idle this long (`idle_in_transaction_session_timeout`):
   * a stuck process must not hold a ledger chain lock, and with it the commit horizon and that
   * tenant's appends, for good (src/ledger/commit-horizon.ts). Unset: no bound (migrations, tools).
   */
  idleInTransactionTimeoutMs?: number;
}

/** Margin of the client-side read timeout over statement_timeout, so a live server cancels first. */
const READ_TIMEOUT_MARGIN_MS = 1_000;

export function createPgPool(connectionString: string, options: DatabaseOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'vm-tenant',
    ...(options.asynchronousCommit ? { options: '-c synchronous_commit=off' } : {}),
    ...(options.idleInTransactionTimeoutMs ? { idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs } : {}),
    ...(options.statementTimeoutMs
      ? { statement_timeout: options.statementTimeoutMs, query_timeout: options.statementTimeoutMs + READ_TIMEOUT_MARGIN_MS }
      : {}),
    // Queue for a connection rather than fail at once: a burst of requests may hold every connection
    // for a moment, and a burst must not surface as a 5xx. The API bounds the wait (DATABASE_ACQUIRE_TIMEOUT_MS).
    connectionTimeoutMillis: options.acquireTimeoutMs ?? 30_000,
  });
  // A dropped connection must not crash the process; the next query gets a fresh one.
  pool.on('error', () => undefined);
  // The pool's own listener covers idle clients only: pg-pool removes it while a client is checked
  // out, and pg emits 'error' on a client whose server goes away even while a query runs. Without a
  // listener of our own, a Postgres restart killed the API and the worker (test/faults/postgres-outage).
  // The query in flight still rejects with the error; that is how callers learn of it.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
    discardConnectionOnReadTimeout(client);
  });
  return pool;
}

const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
// SQLSTATE: admin_shutdown, crash_shutdown, cannot_connect_now, too_many_connections,
// query_canceled (57014: statement_timeout, the server's own deadline on a statement), and the
// transient conflicts a retry resolves: serialization_failure, deadlock_detected (a ledger batch of
// another process holding the row this one waits for), lock_not_available, and
// idle_in_transaction_session_timeout (25P03: a session the server ended).
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '40001', '40P01', '55P03', '25P03']);
// pg's errors for a lost connection, a pool acquire timeout and the client-side read timeout carry no
// code; nor does the one for a query on a connection ended after a read timeout (a transaction's ROLLBACK).
const CONNECTION_LOST = new RegExp(
  `^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed and is not queryable|${QUERY_READ_TIMEOUT_MESSAGE})`,
);

function isUnavailableCause(error: object): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'))) return true;
  return typeof message === 'string' && CONNECTION_LOST.test(message);
}

/**
 * Whether an error, or one of its causes, means Postgres could not be reached, dropped the
 * connection or did not answer in time (as opposed to a query it refused): the server is down,
 * restarting, hung or full.
 */
export function isDatabaseUnavailableError(error: unknown): boolean {
  return findCause(error, isUnavailableCause) !== undefined;
}

export function createDatabase(connectionString: string, options: DatabaseOptions = {}): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: createPgPool(connectionString, options) }) });
}
