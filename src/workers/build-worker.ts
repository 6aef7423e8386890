import { Worker } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { NatsConnection } from 'nats';
import { createActivities } from '../activities';
import type { Config } from '../config/config';
import { createDatabase } from '../db/database';
import { checkDatabaseConnection } from '../db/database-connect';
import type { Database } from '../db/tables';
import { ensureCheckpointStream } from '../ledger/checkpoint-stream';
import { EventRelay } from '../events/event-relay';
import { ensureEventStream, eventStreamLimits } from '../events/jetstream-stream';
import { startTenantStreamKeeper } from '../events/tenant-streams';
import { connectNats } from '../events/nats-connection';
import { createFleetClient } from '../fleet/fleet-client';
import { ensureCheckpointSigningKey, type CheckpointSigningKey } from '../ledger/checkpoint-key';
import { exportCheckpointPublicKey } from '../ledger/checkpoint-public-key-export';
import { signerLiveness } from '../ledger/checkpoint-freshness';
import { LedgerCheckpointSigner } from '../ledger/checkpoint-signer';
import { startSignerStarvationAlarm } from '../ledger/horizon-starvation';
import { LedgerWriter } from '../ledger/ledger-writer';
import { createLogger, type Logger } from '../logging/logger';
import { instrumentFleetClient } from '../metrics/instrumented-fleet-client';
import { readEventRelayLag, registerEventRelayMetrics } from '../metrics/event-relay-metrics';
import { readUnsettledVms, registerVmSettlementMetrics } from '../metrics/vm-settlement-metrics';
import { registerLedgerCheckpointMetrics } from '../metrics/ledger-checkpoint-metrics';
import { createWorkerMetrics, type WorkerMetrics } from '../metrics/worker-metrics';
import { connectTemporalWorker } from '../temporal/temporal-connect';
import { connectTenantWorkflows } from '../temporal/tenant-workflows-connection';
import { startAdmissionResolver } from './admission-resolver';
import { startHousekeeping } from './housekeeping';
import { activityInterceptors, workflowSpanSinks } from '../telemetry/temporal-tracing';
import { flushTracing, startTracing } from '../telemetry/tracing';
import { prebuiltBundle, WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './workflow-bundle';

/** Each fleet call's deadline (the fleet client aborts the request after it). */
const FLEET_CALL_TIMEOUT_MS = 10_000;

export interface WorkerOverrides {
  log?: Logger;
  metrics?: WorkerMetrics;
  /** Defaults to the bundle `npm run build` made, when there is one; otherwise the sources are bundled at start. */
  workflowBundle?: { codePath: string };
  bootPollMs?: number;
  /** False: sign no ledger checkpoints (test stacks that share one database). */
  signCheckpoints?: boolean;
}

/** Everything the worker process runs, and every connection it holds. */
export interface BuiltWorker {
  worker: Worker;
  nats: NatsConnection;
  db: Kysely<Database>;
  log: Logger;
  metrics: WorkerMetrics;
  workflowBundle: { codePath: string } | undefined;
  /** Starts the relay, the checkpoint signer, housekeeping, the admission resolver and the Temporal worker; resolves when the worker has stopped. */
  run(): Promise<void>;
  /** Stops polling, lets in-flight activities finish (up to the grace time), stops the rest and closes every connection. Idempotent. */
  close(): Promise<void>;
}

/** The signing key, its public half also where the API reads it (a volume without the private key). */
async function signingKey(config: Config): Promise<CheckpointSigningKey> {
  const key = await ensureCheckpointSigningKey(config.dataDir);
  await exportCheckpointPublicKey(key.publicKey, config.ledgerCheckpointPublicKeyFile);
  return key;
}

/**
 * Signs the ledger head to the checkpoint stream (see LedgerCheckpointSigner), with its metrics: the
 * age of the newest checkpoint, what waits for one, and how long the signer has been starved.
 */
async function createCheckpointSigner(
  config: Config,
  deps: { db: Kysely<Database>; nats: NatsConnection; log: Logger; metrics: WorkerMetrics },
): Promise<LedgerCheckpointSigner> {
  const everyMs = config.ledgerCheckpointEverySeconds * 1000;
  const jsm = await deps.nats.jetstreamManager();
  const stream = await ensureCheckpointStream(jsm, config.ledgerCheckpointStream, config.natsSubjectPrefix, config.natsStreamReplicas);
  if (stream.replicas !== config.natsStreamReplicas) {
    // The worker's NATS user may not reconfigure the checkpoint stream: an operator does (docs/deploy.md).
    deps.log.warn(
      { stream: config.ledgerCheckpointStream, replicas: stream.replicas, wanted: config.natsStreamReplicas },
      `the checkpoint stream has ${stream.replicas} replicas, NATS_STREAM_REPLICAS asks for ${config.natsStreamReplicas}: run \`nats stream edit ${config.ledgerCheckpointStream} --replicas ${config.natsStreamReplicas}\``,
    );
  }
  const signer = new LedgerCheckpointSigner({
    db: deps.db,
    js: deps.nats.jetstream(),
    jsm,
    subjectPrefix: config.natsSubjectPrefix,
    log: deps.log,
    key: await signingKey(config),
    stream: config.ledgerCheckpointStream,
    everyEntries: config.ledgerCheckpointEveryEntries,
    everyMs,
  });
  registerLedgerCheckpointMetrics(deps.metrics.registry, everyMs / 1000, signerLiveness(deps.db, signer, everyMs));
  return signer;
}

/**
 * The one wiring of the worker process, used by its entry point (worker.ts) and by the test stacks:
 * Postgres, one LedgerWriter (the activities and the admission resolver share its group commit), the
 * Temporal worker with the activities, the tenant workflows' client for the resolver, NATS with the
 * event relay and the ledger checkpoint signer, and housekeeping.
 */
export async function buildWorker(config: Config, overrides: WorkerOverrides = {}): Promise<BuiltWorker> {
  const log = overrides.log ?? createLogger({ level: config.logLevel, name: 'vm-tenant-worker' });
  // Before any connection: the Temporal interceptors are wired only if tracing is on (docs/tracing.md).
  startTracing('vm-tenant-worker', { warn: (message) => log.warn(message) });
  const metrics = overrides.metrics ?? createWorkerMetrics();
  const db = createDatabase(config.databaseUrl, {
    applicationName: 'vm-tenant-worker',
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    acquireTimeoutMs: config.databaseAcquireTimeoutMs,
    idleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
  });
  await checkDatabaseConnection(db, config.databaseUrl);
  const ledger = new LedgerWriter(db);
  const tenantWorkflows = await connectTenantWorkflows(config);
  const nats = await connectNats(config.nats, { name: 'vm-tenant-worker', waitForServer: true });
  await ensureEventStream(await nats.jetstreamManager(), config.natsStream, config.natsSubjectPrefix, eventStreamLimits(config));
  const workerConnection = await connectTemporalWorker(config.temporal.connection);
  const fleet = instrumentFleetClient(createFleetClient({ baseUrl: config.fleetUrl, timeoutMs: FLEET_CALL_TIMEOUT_MS }), metrics);
  const workflowBundle = overrides.workflowBundle ?? prebuiltBundle();
  const worker = await Worker.create({
    connection: workerConnection,
    namespace: config.temporalNamespace,
    taskQueue: config.temporalTaskQueue,
    ...(workflowBundle ? { workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    interceptors: { activity: activityInterceptors(), ...(workflowBundle ? {} : { workflowModules: WORKFLOW_INTERCEPTOR_MODULES }) },
    sinks: workflowSpanSinks(),
    activities: createActivities({ db, ledger, fleet, bootPollMs: overrides.bootPollMs, metrics }),
    // A bound, not the SDK's default (a share of the heap): the worker's memory follows it (docs/performance.md).
    maxCachedWorkflows: config.workerMaxCachedWorkflows,
    shutdownGraceTime: '20 seconds',
    // A booting VM's activity learns of a destroy (its cancellation) from a heartbeat's answer:
    // heartbeats reach the server at least every second, so a destroy stops a boot within about one.
    maxHeartbeatThrottleInterval: '1 second',
  });
  const relay = new EventRelay({
    db,
    databaseUrl: config.databaseUrl,
    js: nats.jetstream(),
    subjectPrefix: config.natsSubjectPrefix,
    log,
    onPublished: (count) => metrics.natsPublished.inc(count),
    onRetry: () => metrics.natsPublishRetries.inc(),
  });
  // While this worker's relay leads, its own appends wake it in process instead of through Postgres.
  ledger.wakeInProcess(relay);
  // Every worker reports the relay's lag (from its cursor in Postgres), whichever of them leads.
  registerEventRelayMetrics(metrics.registry, () => readEventRelayLag(db, config.natsSubjectPrefix));
  registerVmSettlementMetrics(metrics.registry, config.vmBootTimeoutMs / 1000, () => readUnsettledVms(db));
  const signer = overrides.signCheckpoints === false ? null : await createCheckpointSigner(config, { db, nats, log, metrics });

  const background: Array<{ stop(): void }> = [];
  let running: Promise<void> | null = null;
  let closing: Promise<void> | null = null;

  function run(): Promise<void> {
    if (running) return running;
    relay.start();
    if (signer) {
      signer.start();
      // A signer that cannot reach the commit horizon for a signing period says so, naming who holds it back.
      background.push(startSignerStarvationAlarm(signer, { db, log, warnAfterMs: config.ledgerCheckpointEverySeconds * 1000 }));
    }
    background.push(startHousekeeping(db, log));
    if (config.natsTenantStreams) {
      const tenantStreams = { mainStream: config.natsStream, subjectPrefix: config.natsSubjectPrefix, limits: eventStreamLimits(config) };
      background.push(startTenantStreamKeeper(nats, tenantStreams, log));
    }
    const resolverEvery = { everyMs: config.admissionResolverEveryMs, olderThanMs: config.admissionResolveAfterMs };
    background.push(startAdmissionResolver({ db, ledger, workflows: tenantWorkflows.workflows, log, now: () => new Date() }, resolverEvery));
    running = worker.run();
    return running;
  }

  async function stopAll(): Promise<void> {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    for (const task of background.splice(0)) task.stop();
    await relay.stop();
    await signer?.stop();
    await workerConnection.close();
    await nats.drain().catch(() => undefined);
    await tenantWorkflows.connection.close();
    await db.destroy();
    await flushTracing();
  }

  return {
    worker,
    nats,
    db,
    log,
    metrics,
    workflowBundle,
    run,
    close: () => (closing ??= stopAll()),
  };
}
