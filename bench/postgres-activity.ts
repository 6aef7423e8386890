import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/**
 * What one database did over a phase, from Postgres's cumulative statistics: transactions, and per
 * table the index and sequential scans (statements that read it), rows read (sequential reads and
 * index fetches) and rows written. Backends report
 * their counts when idle, at most every 10 s, so a reading waits that long first.
 */
export interface PostgresActivity {
  readonly transactions: number;
  readonly tables: Readonly<Record<string, { scans: number; rows_read: number; rows_inserted: number; rows_updated: number }>>;
}

const REPORT_DELAY_MS = 11_000;

async function read(ownerUrl: string, databaseName: string): Promise<PostgresActivity> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const db = await client.query<{ n: string }>('select xact_commit + xact_rollback as n from pg_stat_database where datname = $1', [databaseName]);
    const { rows } = await client.query<{ relname: string; scans: string; reads: string; ins: string; upd: string }>(
      `select relname, coalesce(seq_scan, 0) + coalesce(idx_scan, 0) as scans, coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) as reads,
              n_tup_ins as ins, n_tup_upd as upd from pg_stat_user_tables`,
    );
    return {
      transactions: Number(db.rows[0]?.n ?? 0),
      tables: Object.fromEntries(
        rows.map((r) => [r.relname, { scans: Number(r.scans), rows_read: Number(r.reads), rows_inserted: Number(r.ins), rows_updated: Number(r.upd) }]),
      ),
    };
  } finally {
    await client.end();
  }
}

/**
 * Transactions a second the run's database does with nothing sent to it: the event relay's and the
 * token watches' heartbeats, the signer's and the resolver's rounds. Read over two report delays.
 */
export async function idleTransactionsPerSecond(ownerUrl: string, databaseName: string): Promise<number> {
  await sleep(REPORT_DELAY_MS);
  const before = await read(ownerUrl, databaseName);
  await sleep(2 * REPORT_DELAY_MS);
  const after = await read(ownerUrl, databaseName);
  return Math.round(((after.transactions - before.transactions) / ((2 * REPORT_DELAY_MS) / 1000)) * 100) / 100;
}

/**
 * Runs `phase` and returns what the database did meanwhile, per `operations` (e.g. spawns carried
 * to running). `benchStatements`: statements the bench itself ran against the database (its polls),
 * left out; `idlePerS`: the idle rate, charged for the report delay after the phase and left out.
 */
export async function measurePostgresActivity<T>(
  ownerUrl: string,
  databaseName: string,
  phase: () => Promise<T>,
): Promise<{ result: T; per: (operations: number, benchStatements?: number, idlePerS?: number) => PostgresActivity }> {
  await sleep(REPORT_DELAY_MS);
  const before = await read(ownerUrl, databaseName);
  const result = await phase();
  await sleep(REPORT_DELAY_MS);
  const after = await read(ownerUrl, databaseName);
  const per = (operations: number, benchStatements = 0, idlePerS = 0): PostgresActivity => {
    const div = (n: number) => Math.round((n / operations) * 100) / 100;
    const tables: Record<string, { scans: number; rows_read: number; rows_inserted: number; rows_updated: number }> = {};
    for (const [name, t] of Object.entries(after.tables)) {
      const b = before.tables[name] ?? { scans: 0, rows_read: 0, rows_inserted: 0, rows_updated: 0 };
      const delta = {
        scans: div(t.scans - b.scans),
        rows_read: div(t.rows_read - b.rows_read),
        rows_inserted: div(t.rows_inserted - b.rows_inserted),
        rows_updated: div(t.rows_updated - b.rows_updated),
      };
      if (delta.scans || delta.rows_inserted || delta.rows_updated) tables[name] = delta;
    }
    const tail = idlePerS * (REPORT_DELAY_MS / 1000);
    return { transactions: div(after.transactions - before.transactions - benchStatements - tail), tables };
  };
  return { result, per };
}
