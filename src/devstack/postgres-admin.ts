import pg from 'pg';

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
