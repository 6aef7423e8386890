import { sql } from 'kysely';
import { createDatabase, isDatabaseUnavailableError } from '../../src/db/database';
import { testEnv } from '../helpers/test-env';

const STATEMENT_TIMEOUT_MS = 500;
/** pg's client-side read timeout: statement_timeout + 1 s (src/db/database.ts). */
const READ_TIMEOUT_MS = STATEMENT_TIMEOUT_MS + 1_000;

/**
 * The Postgres deadlines the API and worker run with: statement_timeout on the server, a read
 * timeout on the client (the only one that ends the wait on a hung server), and what happens to a
 * connection whose answer never came.
 */
describe('Postgres call deadlines', () => {
  const db = createDatabase(testEnv().databaseUrl, { max: 1, statementTimeoutMs: STATEMENT_TIMEOUT_MS, acquireTimeoutMs: 1_000 });
  afterAll(async () => {
    await db.destroy();
  });

  test('when a statement runs past statement_timeout, then it fails as the database being unavailable (503), and the connection stays usable', async () => {
    const error = await sql`select pg_sleep(3)`.execute(db).catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('57014');
    expect(isDatabaseUnavailableError(error)).toBe(true);
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(rows).toEqual([{ one: 1 }]);
  });

  test('when Postgres picks a transaction as a deadlock victim, then it fails as a transient unavailability (503, retry), not a 500', async () => {
    const other = createDatabase(testEnv().migrationDatabaseUrl, { max: 2, statementTimeoutMs: 5_000, acquireTimeoutMs: 1_000 });
    try {
      const table = `deadlock_probe_${process.pid}_${Date.now()}`;
      await sql`create table ${sql.table(table)} (id int primary key, v int)`.execute(other);
      await sql`insert into ${sql.table(table)} values (1, 0), (2, 0)`.execute(other);
      let firstLocked!: () => void;
      const locked = new Promise<void>((resolve) => (firstLocked = resolve));
      const outcomes = await Promise.allSettled([
        other.transaction().execute(async (trx) => {
          await sql`update ${sql.table(table)} set v = 1 where id = 1`.execute(trx);
          firstLocked();
          await sql`select pg_sleep(0.3)`.execute(trx);
          await sql`update ${sql.table(table)} set v = 1 where id = 2`.execute(trx);
        }),
        other.transaction().execute(async (trx) => {
          await sql`update ${sql.table(table)} set v = 2 where id = 2`.execute(trx);
          await locked;
          await sql`update ${sql.table(table)} set v = 2 where id = 1`.execute(trx);
        }),
      ]);
      await sql`drop table ${sql.table(table)}`.execute(other);
      const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
      expect(failed.map((o) => (o.reason as { code?: string }).code)).toEqual(['40P01']);
      expect(isDatabaseUnavailableError(failed[0]!.reason)).toBe(true);
    } finally {
      await other.destroy();
    }
  });

  test('when the server does not answer within the read timeout (it never cancels), then the query fails as unavailable in time and its connection is discarded, not lent again', async () => {
    // One connection (max 1) whose server-side timeout is off: only the client's read timeout ends
    // the wait, as with a SIGSTOPped server.
    const pid = await db.connection().execute(async (conn) => {
      await sql`set statement_timeout = 0`.execute(conn);
      return (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn)).rows[0]!.pid;
    });
    const started = Date.now();
    const error = await db
      .connection()
      .execute((conn) => sql`select pg_sleep(4)`.execute(conn))
      .catch((e: unknown) => e);
    const waited = Date.now() - started;
    expect((error as Error).message).toBe('Query read timeout');
    expect(isDatabaseUnavailableError(error)).toBe(true);
    expect(waited).toBeGreaterThanOrEqual(READ_TIMEOUT_MS - 50);
    expect(waited).toBeLessThan(READ_TIMEOUT_MS + 1_000);

    // The next query gets a new connection at once, rather than queueing behind the unanswered one.
    const next = Date.now();
    const after = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db)).rows[0]!.pid;
    expect(after).not.toBe(pid);
    expect(Date.now() - next).toBeLessThan(1_000);
  });

  test('when the read timeout hits inside a transaction, then the error that surfaces (the rollback on the ended connection) is still the database being unavailable', async () => {
    const error = await db
      .transaction()
      .execute(async (trx) => {
        await sql`set local statement_timeout = 0`.execute(trx);
        await sql`select pg_sleep(4)`.execute(trx);
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(isDatabaseUnavailableError(error)).toBe(true);
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(rows).toEqual([{ one: 1 }]);
  });
});
