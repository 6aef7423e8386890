/** Jest global teardown: stops this run's Temporal dev server and drops its database. */
import pg from 'pg';
import './global-setup'; // the globalThis declaration

export default async function globalTeardown(): Promise<void> {
  const handles = globalThis.__VM_TENANT_TEST_STACK__;
  if (!handles) return;
  globalThis.__VM_TENANT_TEST_STACK__ = undefined;

  const stopTemporal = handles.temporal?.stop(5_000);
  const client = new pg.Client({ connectionString: handles.adminUrl });
  try {
    await client.connect();
    await client.query(`drop database if exists ${client.escapeIdentifier(handles.databaseName)} with (force)`);
  } finally {
    await client.end().catch(() => undefined);
    await stopTemporal;
  }
}
