import { Client } from '@temporalio/client';
import type { Kysely } from 'kysely';
import type { Config } from '../config/config';
import { createDatabase } from '../db/database';
import { checkDatabaseConnection } from '../db/database-connect';
import type { Database } from '../db/tables';
import { ensureCheckpointSigningKey, type CheckpointSigningKey } from '../ledger/checkpoint-key';
import { exportCheckpointPublicKey } from '../ledger/checkpoint-public-key-export';
import { createLogger, type Logger } from '../logging/logger';
import { createWorkerMetrics, type WorkerMetrics } from '../metrics/worker-metrics';
import { connectTemporalClient } from '../temporal/temporal-connect';
import { createTenantWorkflowClient } from '../temporal/tenant-workflow-client';
import { createTenantWorker, type TenantWorkerRuntime } from './tenant-worker';
import { prebuiltBundle } from './workflow-bundle';

export interface WorkerOverrides {
  log?: Logger;
  metrics?: WorkerMetrics;
  /** Defaults to the bundle `npm run build` made, when there is one; otherwise the sources are bundled at start. */
  workflowBundle?: { codePath: string };
  bootPollMs?: number;
  /** False: sign no ledger checkpoints (test stacks that share one database). */
  signCheckpoints?: boolean;
}

/** The worker runtime and every connection it holds; close() shuts the worker down and releases them. */
export interface BuiltWorker {
  runtime: TenantWorkerRuntime;
  db: Kysely<Database>;
  log: Logger;
  metrics: WorkerMetrics;
  workflowBundle: { codePath: string } | undefined;
  close(): Promise<void>;
}

/** The signing key, its public half also where the API reads it (a volume without the private key). */
async function signingKey(config: Config): Promise<CheckpointSigningKey> {
  const key = await ensureCheckpointSigningKey(config.dataDir);
  await exportCheckpointPublicKey(key.publicKey, config.ledgerCheckpointPublicKeyFile);
  return key;
}

/** The one place the worker is wired from its configuration: the worker entry point and the test stacks use it. */
export async function buildWorker(config: Config, overrides: WorkerOverrides = {}): Promise<BuiltWorker> {
  const log = overrides.log ?? createLogger({ level: config.logLevel, name: 'vm-tenant-worker' });
  const metrics = overrides.metrics ?? createWorkerMetrics();
  const db = createDatabase(config.databaseUrl, {
    applicationName: 'vm-tenant-worker',
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    acquireTimeoutMs: config.databaseAcquireTimeoutMs,
    idleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
  });
  await checkDatabaseConnection(db, config.databaseUrl);
  const clientConnection = await connectTemporalClient(config.temporal.connection);
  const workflows = createTenantWorkflowClient({
    client: new Client({ connection: clientConnection, namespace: config.temporalNamespace }),
    taskQueue: config.temporalTaskQueue,
    callTimeoutMs: config.temporalCallTimeoutMs,
    continueAsNewAfterUpdates: config.tenantHistoryUpdateLimit,
    limits: { max_in_flight: config.tenantMaxInFlight, boot_timeout_ms: config.vmBootTimeoutMs },
  });
  const workflowBundle = overrides.workflowBundle ?? prebuiltBundle();
  const runtime = await createTenantWorker({
    db,
    workflows,
    resolver: { everyMs: config.admissionResolverEveryMs, olderThanMs: config.admissionResolveAfterMs },
    databaseUrl: config.databaseUrl,
    temporalAddress: config.temporalAddress,
    temporalConnection: config.temporal.connection,
    namespace: config.temporalNamespace,
    taskQueue: config.temporalTaskQueue,
    nats: config.nats,
    natsStream: config.natsStream,
    natsSubjectPrefix: config.natsSubjectPrefix,
    fleetUrl: config.fleetUrl,
    log,
    workflowBundle,
    bootPollMs: overrides.bootPollMs,
    metrics,
    ledgerCheckpoints:
      overrides.signCheckpoints === false
        ? undefined
        : {
            key: await signingKey(config),
            stream: config.ledgerCheckpointStream,
            everyEntries: config.ledgerCheckpointEveryEntries,
            everyMs: config.ledgerCheckpointEverySeconds * 1000,
          },
  });
  return {
    runtime,
    db,
    log,
    metrics,
    workflowBundle,
    async close() {
      await runtime.shutdown();
      await clientConnection.close();
      await db.destroy();
    },
  };
}
