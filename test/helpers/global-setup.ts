/**
 * Jest global setup: runs once per `jest` invocation, in the parent process, before any
 * test worker starts. Workers inherit the process.env it sets (see test-env.ts).
 *
 *  - checks that Postgres and NATS are reachable (failing with how to start them);
 *  - starts a headless, in-memory Temporal dev server on free ports (src/devstack/stack.ts);
 *  - creates and migrates a fresh database vm_tenant_test_<ms>_<hex>.
 *
 * Handles for global-teardown.ts are kept on globalThis (same process).
 */
import { randomBytes } from 'node:crypto';
import { SERVICE_ROLE } from '../../src/db/migrations/2026_11_23_0001_tenants_tokens_ledger';
import { adminQuery, createScratchDatabase, SCRATCH_DATABASE_NAME, withDatabase, type ScratchDatabase } from '../../src/devstack/postgres-admin';
import { checkServices } from '../../src/devstack/service-checks';
import { startStack, type DevStack } from '../../src/devstack/stack';

declare global {
  var __VM_TENANT_TEST_STACK__: { temporal: DevStack; database: ScratchDatabase } | undefined;
}

const DEFAULT_PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
/** Test databases left behind by runs that crashed are dropped after this long. */
const STALE_AFTER_MS = 12 * 60 * 60 * 1000;

async function dropStaleTestDatabases(adminUrl: string): Promise<void> {
  const { rows } = await adminQuery(adminUrl, "select datname from pg_database where datname like 'vm\\_tenant\\_test\\_%'");
  for (const { datname } of rows as { datname: string }[]) {
    const stamp = Number(SCRATCH_DATABASE_NAME.exec(datname)?.[1]);
    if (!Number.isFinite(stamp) || Date.now() - stamp < STALE_AFTER_MS) continue;
    await adminQuery(adminUrl, `drop database if exists "${datname}" with (force)`).catch(() => undefined);
  }
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  // The superuser login on the server the tests use; TEST_PG_ADMIN_URL overrides it.
  const adminUrl = withDatabase(process.env.TEST_PG_ADMIN_URL || DEFAULT_PG_ADMIN_URL, 'postgres');
  const natsUrl = process.env.NATS_URL || DEFAULT_NATS_URL;
  await checkServices({ postgresUrl: adminUrl, natsUrl });
  await dropStaleTestDatabases(adminUrl).catch(() => undefined);

  const [temporal, database] = await Promise.allSettled([
    // Quiet unless it fails to start (the error then carries its last lines).
    startStack({ env: {}, temporal: { headless: true, onLine: () => undefined }, services: [] }),
    createScratchDatabase(adminUrl, 'vm_tenant_test'),
  ]);
  if (temporal.status === 'rejected' || database.status === 'rejected') {
    // Jest skips globalTeardown when setup fails: leave nothing behind.
    await Promise.allSettled([temporal.status === 'fulfilled' && temporal.value.stop(), database.status === 'fulfilled' && database.value.drop()]);
    throw temporal.status === 'rejected' ? temporal.reason : (database as PromiseRejectedResult).reason;
  }
  globalThis.__VM_TENANT_TEST_STACK__ = { temporal: temporal.value, database: database.value };

  const testRunId = `${Date.now().toString(36).slice(-5)}${randomBytes(3).toString('hex')}`;
  Object.assign(process.env, {
    TEMPORAL_ADDRESS: temporal.value.env.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: temporal.value.env.TEMPORAL_NAMESPACE,
    DATABASE_URL: withDatabase(adminUrl, database.value.name, SERVICE_ROLE),
    MIGRATION_DATABASE_URL: database.value.url,
    NATS_URL: natsUrl,
    TEST_RUN_ID: testRunId,
  });
  process.stderr.write(
    `\n[global-setup] Temporal ${temporal.value.env.TEMPORAL_ADDRESS}, database ${database.value.name}, run ${testRunId} (${Date.now() - started} ms)\n`,
  );
}
