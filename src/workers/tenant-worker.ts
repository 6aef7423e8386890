import { Worker } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import type { NatsConnection } from 'nats';
import { createActivities } from '../activities';
import type { Database } from '../db/tables';
import { EventRelay } from '../events/event-relay';
import { ensureEventStream } from '../events/jetstream-stream';
import { createFleetClient } from '../fleet/fleet-client';
import { instrumentFleetClient } from '../metrics/instrumented-fleet-client';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import type { Logger } from '../logging/logger';
import { ensureCheckpointStream } from '../events/checkpoint-stream';
import type { CheckpointSigningKey } from '../ledger/checkpoint-key';
import { LedgerCheckpointSigner } from '../ledger/checkpoint-signer';
import { signerLiveness } from '../ledger/checkpoint-freshness';
import { startSignerStarvationAlarm } from '../ledger/horizon-starvation';
import { registerLedgerCheckpointMetrics } from '../metrics/ledger-checkpoint-metrics';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { startHousekeeping } from './housekeeping';
import { startAdmissionResolver } from './admission-resolver';
import { LedgerWriter } from '../ledger/ledger-writer';
import { connectNats } from '../events/nats-connection';
import type { NatsSettings } from '../events/nats-env-config';
import { WORKFLOWS_PATH } from './workflow-bundle';
import { connectTemporalWorker } from '../temporal/temporal-connect';
import type { TemporalConnectionOptions } from '../temporal/temporal-env-config';

export interface TenantWorkerOptions {
  db: Kysely<Database>;
  databaseUrl: string;
  temporalAddress: string;
  /** TLS, API key and metadata from Temporal's environment configuration; without it, plaintext to temporalAddress. */
  temporalConnection?: TemporalConnectionOptions;
  namespace: string;
  taskQueue: string;
  /** NATS_URL with its credentials and TLS files. */
  nats: NatsSettings;
  natsStream: string;
  natsSubjectPrefix: string;
  fleetUrl: string;
  log: Logger;
  workflowBundle?: { codePath: string };
  fleetTimeoutMs?: number;
  bootPollMs?: number;
  /** Whether this process relays ledger entries to NATS (one relay leads cluster-wide). */
  relayEvents?: boolean;
  metrics?: WorkerMetrics;
  /** The tenant workflows as a client sees them: the admission resolver asks them for decisions nobody heard. */
  workflows?: TenantWorkflowGateway;
  /** How soon an undecided request or destroy is sent again (tests shorten it). */
  resolver?: { everyMs?: number; olderThanMs?: number };
  /** Sign the ledger head to this stream at this cadence (see LedgerCheckpointSigner). */
  ledgerCheckpoints?: { key: CheckpointSigningKey; stream: string; everyEntries: number; everyMs: number };
}

export interface TenantWorkerRuntime {
  worker: Worker;
  nats: NatsConnection;
  /** Resolves when the worker has stopped. */
  run(): Promise<void>;
  /** Stops polling, lets in-flight activities finish (up to the grace time), then closes connections. */
  shutdown(): Promise<void>;
}

export async function createTenantWorker(options: TenantWorkerOptions): Promise<TenantWorkerRuntime> {
  const nats = await connectNats(options.nats, { name: 'vm-tenant-worker', waitForServer: true });
  await ensureEventStream(await nats.jetstreamManager(), options.natsStream, options.natsSubjectPrefix);
  const connection = await connectTemporalWorker(options.temporalConnection ?? { address: options.temporalAddress });
  const rawFleet = createFleetClient({ baseUrl: options.fleetUrl, timeoutMs: options.fleetTimeoutMs ?? 10_000 });
  const fleet = options.metrics ? instrumentFleetClient(rawFleet, options.metrics) : rawFleet;
  const worker = await Worker.create({
    connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    ...(options.workflowBundle ? { workflowBundle: options.workflowBundle } : { workflowsPath: WORKFLOWS_PATH }),
    activities: createActivities({ db: options.db, fleet, bootPollMs: options.bootPollMs, metrics: options.metrics }),
    shutdownGraceTime: '20 seconds',
    // A booting VM's activity learns of a destroy (its cancellation) from a heartbeat's answer:
    // heartbeats reach the server at least every second, so a destroy stops a boot within about one.
    maxHeartbeatThrottleInterval: '1 second',
  });
  const relay =
    options.relayEvents === false
      ? null
      : new EventRelay({
          db: options.db,
          databaseUrl: options.databaseUrl,
          js: nats.jetstream(),
          subjectPrefix: options.natsSubjectPrefix,
          log: options.log,
          onPublished: (count) => options.metrics?.natsPublished.inc(count),
          onRetry: () => options.metrics?.natsPublishRetries.inc(),
        });
  const checkpoints = options.ledgerCheckpoints;
  let signer: LedgerCheckpointSigner | null = null;
  if (checkpoints) {
    const jsm = await nats.jetstreamManager();
    await ensureCheckpointStream(jsm, checkpoints.stream, options.natsSubjectPrefix);
    signer = new LedgerCheckpointSigner({ db: options.db, js: nats.jetstream(), jsm, subjectPrefix: options.natsSubjectPrefix, log: options.log, ...checkpoints });
    // The age of the newest checkpoint, what waits for one, and how long the signer has been starved.
    if (options.metrics) registerLedgerCheckpointMetrics(options.metrics.registry, checkpoints.everyMs / 1000, signerLiveness(options.db, signer, checkpoints.everyMs));
  }
  let starvationAlarm: { stop(): void } | null = null;
  let housekeeping: { stop(): void } | null = null;
  let resolver: { stop(): void } | null = null;
  let running: Promise<void> | null = null;
  let stopping: Promise<void> | null = null;
  const stop = async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running?.catch(() => undefined);
    housekeeping?.stop();
    resolver?.stop();
    await relay?.stop();
    starvationAlarm?.stop();
    await signer?.stop();
    await connection.close();
    await nats.drain().catch(() => undefined);
  };
  return {
    worker,
    nats,
    run() {
      relay?.start();
      signer?.start();
      // A signer that cannot reach the commit horizon for a signing period says so, naming who holds it back.
      if (signer && checkpoints) starvationAlarm ??= startSignerStarvationAlarm(signer, { db: options.db, log: options.log, warnAfterMs: checkpoints.everyMs });
      housekeeping ??= startHousekeeping(options.db, options.log);
      if (options.workflows) {
        const workflows = options.workflows;
        resolver ??= startAdmissionResolver({ db: options.db, ledger: new LedgerWriter(options.db), workflows, log: options.log, now: () => new Date() }, options.resolver);
      }
      running ??= worker.run();
      return running;
    },
    shutdown() {
      stopping ??= stop();
      return stopping;
    },
  };
}
