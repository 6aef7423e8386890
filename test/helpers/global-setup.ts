/**
 * Jest global setup: runs once per `jest` invocation, in the parent process, before any
 * test worker starts. Workers inherit the process.env it sets (see test-env.ts).
 *
 *  - ensures the Temporal CLI (scripts/ensure-temporal.sh) and starts a headless,
 *    in-memory dev server on free ports;
 *  - checks that Postgres and NATS are reachable (failing with how to start them);
 *  - creates and migrates a fresh database vm_tenant_test_<timestamp>_<random>.
 *
 * Handles for global-teardown.ts are kept on globalThis (same process).
 */
import { randomBytes } from 'node:crypto';
import { migrateToLatest } from '../../src/db/migrate';
import { SERVICE_ROLE } from '../../src/db/migrations/2026_11_23_0001_tenants_tokens_ledger';
import { adminQuery, withDatabase } from '../../src/devstack/postgres-admin';
import { checkServices } from '../../src/devstack/service-checks';
import { ensureTemporalBinary } from '../../src/devstack/temporal-binary';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/devstack/temporal-dev-server';

export interface TestStackHandles {
  temporal?: TemporalDevServer;
  adminUrl: string;
  databaseName: string;
}

declare global {
  var __VM_TENANT_TEST_STACK__: TestStackHandles | undefined;
}

const DEFAULT_PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
/** Test databases left behind by runs that crashed are dropped after this long. */
const STALE_AFTER_MS = 12 * 60 * 60 * 1000;

async function dropStaleTestDatabases(adminUrl: string): Promise<void> {
  const { rows } = await adminQuery(adminUrl, "select datname from pg_database where datname like 'vm\\_tenant\\_test\\_%'");
  for (const { datname } of rows as { datname: string }[]) {
    const stamp = Number(/^vm_tenant_test_(\d+)_/.exec(datname)?.[1]);
    if (!Number.isFinite(stamp) || Date.now() - stamp < STALE_AFTER_MS) continue;
    await adminQuery(adminUrl, `drop database if exists "${datname}" with (force)`).catch(() => undefined);
  }
}

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  // The superuser login on the server the tests use; TEST_PG_ADMIN_URL overrides it.
  const adminUrl = withDatabase(process.env.TEST_PG_ADMIN_URL || DEFAULT_PG_ADMIN_URL, 'postgres');
  const natsUrl = process.env.NATS_URL || DEFAULT_NATS_URL;

  const [temporalBin] = await Promise.all([ensureTemporalBinary(), checkServices({ postgresUrl: adminUrl, natsUrl })]);

  const testRunId = `${Date.now().toString(36).slice(-5)}${randomBytes(3).toString('hex')}`;
  const databaseName = `vm_tenant_test_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const handles: TestStackHandles = { adminUrl, databaseName };
  globalThis.__VM_TENANT_TEST_STACK__ = handles;

  const migrationUrl = withDatabase(adminUrl, databaseName);
  const temporalOutput: string[] = [];
  const [temporal] = await Promise.all([
    startTemporalDevServer({
      temporalBin,
      headless: true,
      // Quiet unless it fails to start (the error then carries its last lines).
      onLine: (line) => {
        temporalOutput.push(line);
      },
    }),
    (async () => {
      await dropStaleTestDatabases(adminUrl).catch(() => undefined);
      await migrateToLatest(migrationUrl);
    })(),
  ]).catch(async (error: unknown) => {
    // Do not leave a half-built stack behind: Jest skips globalTeardown when setup fails.
    await adminQuery(adminUrl, `drop database if exists "${databaseName}" with (force)`).catch(() => undefined);
    throw error;
  });
  handles.temporal = temporal;

  Object.assign(process.env, {
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    DATABASE_URL: withDatabase(adminUrl, databaseName, SERVICE_ROLE),
    MIGRATION_DATABASE_URL: migrationUrl,
    NATS_URL: natsUrl,
    TEST_RUN_ID: testRunId,
  });
  process.stderr.write(
    `\n[global-setup] Temporal ${temporal.address}, database ${databaseName}, run ${testRunId} (${Date.now() - started} ms)\n`,
  );
}
