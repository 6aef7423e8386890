import { Runtime } from '@temporalio/worker';
import { loadConfig } from '../config/config';
import { createDatabase } from '../db/database';
import { createLogger } from '../logging/logger';
import { temporalLogger } from './temporal-logger';
import { createTenantWorker } from './tenant-worker';
import { prebuiltBundle } from './workflow-bundle';

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'vm-tenant-worker' });
  Runtime.install({ logger: temporalLogger(log) });
  const db = createDatabase(config.databaseUrl, { applicationName: 'vm-tenant-worker' });
  const runtime = await createTenantWorker({
    db,
    databaseUrl: config.databaseUrl,
    temporalAddress: config.temporalAddress,
    namespace: config.temporalNamespace,
    taskQueue: config.temporalTaskQueue,
    natsUrl: config.natsUrl,
    natsStream: config.natsStream,
    natsSubjectPrefix: config.natsSubjectPrefix,
    fleetUrl: config.fleetUrl,
    log,
    workflowBundle: prebuiltBundle(),
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
  log.info({ task_queue: config.temporalTaskQueue, temporal: config.temporalAddress }, 'worker started');
  await runtime.run();
  await runtime.shutdown();
  await db.destroy();
  log.info('worker stopped');
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'worker failed to start', error: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
