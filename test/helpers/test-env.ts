/**
 * What test/helpers/global-setup.ts prepared for this Jest run, typed for tests.
 *
 * Every run gets its own Temporal dev server (in-memory, free port), its own freshly
 * migrated database and a unique TEST_RUN_ID; NATS is the shared local server, so
 * streams and subjects must carry the run id (see uniqueName).
 */
import { randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../src/config/config';

export interface TestEnv {
  /** host:port of this run's Temporal dev server (namespace `default`, search attribute TenantId). */
  readonly temporalAddress: string;
  readonly temporalNamespace: string;
  /** This run's database as the service login (vm_tenant_app). */
  readonly databaseUrl: string;
  /** This run's database as the postgres superuser (migrations, cleanup, test fixtures). */
  readonly migrationDatabaseUrl: string;
  readonly natsUrl: string;
  /** Short unique id of this run, for task queues, NATS stream names and tenant ids. */
  readonly testRunId: string;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run tests through Jest so that test/helpers/global-setup.ts prepares the environment`);
  }
  return value;
}

let cached: TestEnv | undefined;

export function testEnv(): TestEnv {
  cached ??= Object.freeze({
    temporalAddress: required('TEMPORAL_ADDRESS'),
    temporalNamespace: process.env.TEMPORAL_NAMESPACE || 'default',
    databaseUrl: required('DATABASE_URL'),
    migrationDatabaseUrl: required('MIGRATION_DATABASE_URL'),
    natsUrl: required('NATS_URL'),
    testRunId: required('TEST_RUN_ID'),
  });
  return cached;
}

let counter = 0;

/**
 * A name unique to this run and this call, e.g. uniqueName('tq') -> "tq-k3f9a2-1-3f9c0a1e".
 * The counter restarts in every test file, so the random part must make collisions between
 * files negligible (three base-36 characters collided in CI: tenant ids are never reused).
 */
export function uniqueName(prefix: string): string {
  counter += 1;
  return `${prefix}-${testEnv().testRunId}-${counter}-${randomUUID().slice(0, 8)}`;
}

/**
 * The app configuration for this run: loadConfig over the test environment, with a task
 * queue and NATS stream of this run, plus any overrides (e.g. PORT: '0').
 */
export function testConfig(overrides: Record<string, string | undefined> = {}): Config {
  const env = testEnv();
  return loadConfig({
    TEMPORAL_ADDRESS: env.temporalAddress,
    TEMPORAL_NAMESPACE: env.temporalNamespace,
    TEMPORAL_TASK_QUEUE: `vm-tenant-${env.testRunId}`,
    DATABASE_URL: env.databaseUrl,
    MIGRATION_DATABASE_URL: env.migrationDatabaseUrl,
    NATS_URL: env.natsUrl,
    NATS_STREAM: `VM_TENANT_${env.testRunId.toUpperCase()}`,
    NATS_SUBJECT_PREFIX: `vmtenant_${env.testRunId}`,
    PORT: '0',
    LOG_LEVEL: 'silent',
    ...overrides,
  });
}
