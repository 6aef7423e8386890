import { Runtime } from '@temporalio/worker';
import { loadConfig } from '../config/config';
import { createLogger } from '../logging/logger';
import { startMetricsServer } from '../metrics/metrics-server';
import { buildWorker } from './build-worker';
import { temporalLogger } from './temporal-logger';

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
  const worker = await buildWorker(config, { log });
  // /healthz (the liveness probe): the Temporal worker polls; a worker whose poller stopped or failed is restarted.
  const metricsServer = await startMetricsServer(
    worker.metrics.registry,
    config.workerMetricsPort,
    config.host,
    log,
    () => worker.worker.getState() === 'RUNNING',
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'worker draining in-flight work');
    void worker.close();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // The compiled worker runs the bundle `npm run build` made; under tsx it bundles the sources.
  const bundled = worker.workflowBundle ? `prebuilt ${worker.workflowBundle.codePath}` : 'bundled at start';
  log.info({ task_queue: config.temporalTaskQueue, temporal: config.temporal.summary, workflows: bundled }, 'worker started');
  await worker.run();
  await worker.close();
  metricsServer?.close();
  log.info('worker stopped');
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'worker failed to start', error: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
