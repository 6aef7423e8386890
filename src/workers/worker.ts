import { Client } from '@temporalio/client';
import { Runtime } from '@temporalio/worker';
import { connectTemporalClient } from '../temporal/temporal-connect';
import { createTenantWorkflowClient } from '../temporal/tenant-workflow-client';
import { loadConfig } from '../config/config';
import { createDatabase } from '../db/database';
import { checkDatabaseConnection } from '../db/database-connect';
import { createLogger } from '../logging/logger';
import { createWorkerMetrics } from '../metrics/worker-metrics';
import { startMetricsServer } from '../metrics/metrics-server';
import { temporalLogger } from './temporal-logger';
import { ensureCheckpointSigningKey } from '../ledger/checkpoint-key';
import { createTenantWorker } from './tenant-worker';
import { prebuiltBundle } from './workflow-bundle';

/** The SDK's own runtime metrics (task slots, poll latency, workflow and activity outcomes) on Prometheus. */
function installTemporalRuntime(log: ReturnType<typeof createLogger>, host: string, port: number): void {
  const logger = temporalLogger(log);
  if (port > 0) {
    try {
      Runtime.install({ logger, telemetryOptions: { metrics: { prometheus: { bindAddress: `${host}:${port}` } } } });
      return;
    } catch (error) {
      log.warn({ err: error, port }, 'Temporal SDK metrics endpoint not started');
    }
  }
  Runtime.install({ logger });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'vm-tenant-worker' });
  installTemporalRuntime(log, config.host, config.temporalSdkMetricsPort);
  const metrics = createWorkerMetrics();
  const metricsServer = await startMetricsServer(metrics.registry, config.workerMetricsPort, config.host, log);
  const db = createDatabase(config.databaseUrl, {
    applicationName: 'vm-tenant-worker',
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    acquireTimeoutMs: config.databaseAcquireTimeoutMs,
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
  const workflowBundle = prebuiltBundle();
  const runtime = await createTenantWorker({
    db,
    workflows,
    databaseUrl: config.databaseUrl,
    temporalAddress: config.temporalAddress,
    temporalConnection: config.temporal.connection,
    namespace: config.temporalNamespace,
    taskQueue: config.temporalTaskQueue,
    natsUrl: config.natsUrl,
    nats: config.nats,
    natsStream: config.natsStream,
    natsSubjectPrefix: config.natsSubjectPrefix,
    fleetUrl: config.fleetUrl,
    log,
    workflowBundle,
    metrics,
    ledgerCheckpoints: {
      key: await ensureCheckpointSigningKey(config.dataDir),
      stream: config.ledgerCheckpointStream,
      everyEntries: config.ledgerCheckpointEveryEntries,
      everyMs: config.ledgerCheckpointEverySeconds * 1000,
    },
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker draining in-flight work');
    void runtime.shutdown();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The compiled worker runs the bundle `npm run build` made; under tsx it bundles the sources.
  const bundled = workflowBundle ? `prebuilt ${workflowBundle.codePath}` : 'bundled at start';
  log.info({ task_queue: config.temporalTaskQueue, temporal: config.temporal.summary, workflows: bundled }, 'worker started');
  await runtime.run();
  await runtime.shutdown();
  await clientConnection.close();
  await db.destroy();
  metricsServer?.close();
  log.info('worker stopped');
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'worker failed to start', error: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
