import { sql, type Kysely } from 'kysely';
import { redactUrl } from '../../connections/redact-url';
import { createDatabase } from '../../db/database';
import type { Database } from '../../db/tables';
import { reasonOf } from '../../shared/error-causes';
import { NatsUnavailableError } from '../verify-ledger';

/**
 * Exit codes: 0 success, 1 a check found a defect, 2 bad usage or configuration, 3 the database
 * (or NATS, or the API) cannot be reached or holds no ledger, 4 any other failure.
 */
export const EXIT = { ok: 0, chainBroken: 1, usage: 2, databaseUnavailable: 3, failure: 4 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export type Env = Record<string, string | undefined>;

/** What every command gets: the environment, where to print, and where to leave its exit code. */
export interface RunContext {
  env: Env;
  io: CliIo;
  exitCode: ExitCode;
}

/** A verdict's lines on stdout; exit 0 when every line is fine, 1 otherwise. */
export function report(run: RunContext, verdict: { ok: boolean; lines: readonly string[] }): void {
  run.io.stdout(`${verdict.lines.join('\n')}\n`);
  run.exitCode = verdict.ok ? EXIT.ok : EXIT.chainBroken;
}

class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}

/** Runs `work` on a one-connection pool of the ledger's database, mapping what goes wrong to an exit code; always closes the pool. */
export async function withLedgerDatabase(run: RunContext, databaseUrl: string, work: (db: Kysely<Database>) => Promise<void>): Promise<void> {
  const db = createDatabase(databaseUrl, { max: 1, applicationName: 'service-fs' });
  const fail = (code: ExitCode, message: string) => {
    run.io.stderr(`service-fs: ${message}\n`);
    run.exitCode = code;
  };
  try {
    try {
      await sql`select 1`.execute(db);
    } catch (error) {
      throw new DatabaseUnavailableError(`cannot connect to ${redactUrl(databaseUrl)}: ${reasonOf(error)}`);
    }
    await work(db);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (error instanceof DatabaseUnavailableError || error instanceof NatsUnavailableError) fail(EXIT.databaseUnavailable, error.message);
    else if (code === '42P01')
      fail(EXIT.databaseUnavailable, `no audit ledger in ${redactUrl(databaseUrl)} (table audit_events is missing); run the migrations first`);
    else if (code === '42501') fail(EXIT.databaseUnavailable, `the database user may not read the ledger: ${reasonOf(error)}`);
    else fail(EXIT.failure, reasonOf(error));
  } finally {
    await db.destroy().catch(() => undefined);
  }
}
