import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ensureDatabaseExists, migrateToLatest } from '../db/migrate';

/** The same server as `url`, on another database and, optionally, as another login (no password). */
export function withDatabase(url: string, database: string, user?: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  if (user !== undefined) {
    parsed.username = user;
    parsed.password = '';
  }
  return parsed.toString();
}

/** One statement on its own connection: CREATE/DROP DATABASE cannot run in a pool's transaction. */
export async function adminQuery(adminUrl: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

export interface ScratchDatabase {
  readonly name: string;
  /** `ownerUrl`'s login on the new database. */
  readonly url: string;
  drop(): Promise<void>;
}

/** `<prefix>_<ms since 1970>_<8 hex>`: the time tells a sweep which ones a crashed run left behind. */
export const SCRATCH_DATABASE_NAME = /_(\d{13})_[0-9a-f]{8}$/;

/**
 * A database of its own on the server of `ownerUrl` (a login that may create databases), migrated
 * unless `migrate` is false; drop() removes it. `prefix` is [a-z0-9_] only, so the name needs no escaping.
 */
export async function createScratchDatabase(ownerUrl: string, prefix: string, options: { migrate?: boolean } = {}): Promise<ScratchDatabase> {
  if (!/^[a-z0-9_]{1,40}$/.test(prefix)) throw new Error(`prefix must be 1-40 of [a-z0-9_], got ${JSON.stringify(prefix)}`);
  const name = `${prefix}_${Date.now()}_${randomBytes(4).toString('hex')}`;
  const url = withDatabase(ownerUrl, name);
  const drop = async () => void (await adminQuery(withDatabase(ownerUrl, 'postgres'), `drop database if exists "${name}" with (force)`));
  try {
    if (options.migrate === false) await ensureDatabaseExists(url);
    // Two processes migrating a fresh cluster at once race on the cluster-wide service role; the
    // loser's migration rolled back, and its second try finds the role.
    else await migrateToLatest(url).catch(() => migrateToLatest(url));
  } catch (error) {
    await drop().catch(() => undefined);
    throw error;
  }
  return { name, url, drop };
}
