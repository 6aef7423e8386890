import type { KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import { Client } from '@temporalio/client';
import { sql } from 'kysely';
import { connect, type NatsConnection } from 'nats';
import { ensureAdminToken } from '../auth/admin-bootstrap';
import { createAuthFailureLimiter } from '../auth/auth-failure-limiter';
import { describeConfig, loadConfig, type Config } from '../config/config';
import { readLastCheckpointText } from '../events/checkpoint-stream';
import { verifyCheckpoint, type StoredCheckpoint } from '../ledger/checkpoint';
import { createDatabase, createPgPool } from '../db/database';
import { createTenantRateLimiter } from '../ratelimit/tenant-rate-limiter';
import { createApiMetrics } from '../metrics/api-metrics';
import { startMetricsServer } from '../metrics/metrics-server';
import { createLogger } from '../logging/logger';
import { readCheckpointPublicKey } from '../ledger/checkpoint-key';
import { createTenantWorkflowClient } from '../temporal/tenant-workflow-client';
import { connectTemporalClient } from '../temporal/temporal-connect';
import { createApp } from './app';
import { natsConnectOptions } from '../events/nats-connection';
import { answerClientError } from './client-error';

/** Reads the worker's public key file until it exists, then keeps it. */
function cachedCheckpointKey(file: string): () => Promise<KeyObject | null> {
  let key: KeyObject | null = null;
  return async () => (key ??= await readCheckpointPublicKey(file));
}

/** The newest checkpoint on the stream that the worker's key signed; null when none (yet). */
function latestCheckpointFrom(nats: NatsConnection, config: Config, key: () => Promise<KeyObject | null>): () => Promise<StoredCheckpoint | null> {
  return async () => {
    const publicKey = await key();
    if (publicKey === null) return null;
    const text = await readLastCheckpointText(await nats.jetstreamManager(), config.ledgerCheckpointStream, config.natsSubjectPrefix);
    return text === null ? null : verifyCheckpoint(text, publicKey);
  };
}

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'vm-tenant-api' });
  // The request path's bound on Postgres: each query waits at most the acquire timeout for a
  // connection and the statement timeout (+1 s on the client side) for its answer, then 503.
  const databaseDeadlines = { statementTimeoutMs: config.databaseStatementTimeoutMs, acquireTimeoutMs: config.databaseAcquireTimeoutMs };
  const db = createDatabase(config.databaseUrl, { applicationName: 'vm-tenant-api', max: 20, ...databaseDeadlines });
  const admin = await ensureAdminToken(db, { adminToken: config.adminToken, dataDir: config.dataDir, now: new Date() });
  const rateLimitPool = createPgPool(config.databaseUrl, { applicationName: 'vm-tenant-api-ratelimit', max: 10, asynchronousCommit: true, ...databaseDeadlines });
  const connection = await connectTemporalClient(config.temporal.connection);
  const temporal = new Client({ connection, namespace: config.temporalNamespace });
  const nats = await connect({ ...natsConnectOptions(config.natsUrl), name: 'vm-tenant-api', maxReconnectAttempts: -1, waitOnFirstConnect: true });

  const rateLimiter = createTenantRateLimiter(rateLimitPool);
  const metrics = createApiMetrics(db);
  const metricsServer = await startMetricsServer(metrics.registry, config.apiMetricsPort, config.host, log);
  const app = createApp({
    db,
    tenantWorkflows: createTenantWorkflowClient({
      client: temporal,
      taskQueue: config.temporalTaskQueue,
      callTimeoutMs: config.temporalCallTimeoutMs,
      continueAsNewAfterUpdates: config.tenantHistoryUpdateLimit,
      limits: { max_in_flight: config.tenantMaxInFlight, boot_timeout_ms: config.vmBootTimeoutMs },
    }),
    log,
    trustedProxies: config.trustedProxies,
    rateLimiter,
    authFailureLimiter: createAuthFailureLimiter({ failuresPerWindow: config.authFailuresPerMinute, windowSeconds: 60 }),
    metrics,
    ledgerCheckpointKey: cachedCheckpointKey(config.ledgerCheckpointPublicKeyFile),
    latestLedgerCheckpoint: latestCheckpointFrom(nats, config, cachedCheckpointKey(config.ledgerCheckpointPublicKeyFile)),
    readiness: {
      postgres: async () => void (await sql`select 1`.execute(db)),
      // The deadline ends the gRPC call itself, so probes of a hung server do not pile up.
      temporal: async (deadline) => void (await connection.withDeadline(deadline, () => connection.workflowService.getSystemInfo({}))),
      nats: async () => {
        if (nats.isClosed()) throw new Error('connection closed');
        await nats.flush();
      },
    },
  });

  const server = createServer(app);
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  log.info({ url: `http://${config.host}:${config.port}`, admin_token: admin.source === 'env' ? 'from ADMIN_TOKEN' : `in ${admin.tokenFile}`, config: describeConfig(config) }, 'api listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'api draining: no new connections, finishing in-flight requests');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), 15_000).unref();
    await closed;
    metricsServer?.close();
    clearTimeout(timer);
    rateLimiter.close?.();
    await Promise.allSettled([db.destroy(), rateLimitPool.end(), connection.close(), nats.drain()]);
    log.info('api stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'api failed to start', error: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
