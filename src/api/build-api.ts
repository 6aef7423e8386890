import type { Client, Connection } from '@temporalio/client';
import type { Express } from 'express';
import { sql, type Kysely } from 'kysely';
import type { NatsConnection } from 'nats';
import { createActiveTokenCache, type ActiveTokenCache } from '../auth/active-token-cache';
import { TokenRevocationWatch } from '../auth/token-revocation-watch';
import { ensureAdminToken, type AdminBootstrapResult } from '../auth/admin-bootstrap';
import { createAuthFailureLimiter } from '../auth/auth-failure-limiter';
import { createTokenService } from '../auth/token.service';
import type { Config } from '../config/config';
import { createDatabase, createPgPool } from '../db/database';
import { checkDatabaseConnection } from '../db/database-connect';
import type { Database } from '../db/tables';
import { connectNats } from '../events/nats-connection';
import type { StoredCheckpoint } from '../ledger/checkpoint';
import { checkpointFreshness } from '../ledger/checkpoint-freshness';
import { publicKeyFileSource } from '../ledger/checkpoint-public-key-source';
import { latestCheckpointReader } from '../ledger/checkpoint-reader';
import { CheckpointSeriesIndex } from '../ledger/checkpoint-series-index';
import { LedgerWriter } from '../ledger/ledger-writer';
import { createLogger, type Logger } from '../logging/logger';
import { flushTracing, startTracing } from '../telemetry/tracing';
import { createApiMetrics, type ApiMetrics } from '../metrics/api-metrics';
import { createTenantRateLimiter } from '../ratelimit/tenant-rate-limiter';
import { connectTenantWorkflows } from '../temporal/tenant-workflows-connection';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { createTenantService } from '../tenants/tenant.service';
import { createVmService } from '../vms/vm.service';
import { createApp, type ApiServices } from './app';
import type { LatestCheckpointSource } from './routes/audit.routes';
import type { CheckpointPublicKeySource } from './routes/checkpoint-key.routes';
import type { DependencyCheck, LedgerCheckpointReport } from './routes/health.routes';

export interface ApiOverrides {
  log?: Logger;
  /** False when the caller provisions its own admin token (the test stacks). */
  bootstrapAdminToken?: boolean;
  ledgerCheckpointKey?: CheckpointPublicKeySource;
  now?: () => Date;
  /** A database handle to use instead of opening one (its owner closes it): tests that watch the queries. */
  db?: Kysely<Database>;
  /** The newest checkpoint from elsewhere than the checkpoint stream: tests of a stream that cannot be read. */
  latestLedgerCheckpoint?: LatestCheckpointSource;
}

/** The API's app and every connection it holds; close() releases them all. */
export interface BuiltApi {
  app: Express;
  db: Kysely<Database>;
  temporal: Client;
  tenantWorkflows: TenantWorkflowGateway;
  metrics: ApiMetrics;
  log: Logger;
  admin: AdminBootstrapResult | null;
  close(): Promise<void>;
}

/** The services the routes call; the token cache forgets every token when some stop being usable. */
function createServices(db: Kysely<Database>, workflows: TenantWorkflowGateway, tokenCache: ActiveTokenCache, log: Logger, now: () => Date): ApiServices {
  const tokensRevoked = () => tokenCache.clear();
  return {
    tenants: createTenantService({ db, workflows, log, now, tokensRevoked }),
    tokens: createTokenService({ db, now, tokensRevoked }),
    vms: createVmService({ db, ledger: new LedgerWriter(db), workflows, now }),
  };
}

/** The newest checkpoint on the stream that the worker's key (or a key it rotated to) signed; foreign messages are skipped. null when none (yet). */
function latestCheckpointFrom(nats: NatsConnection, config: Config, key: CheckpointPublicKeySource): () => Promise<StoredCheckpoint | null> {
  return latestCheckpointReader({ jsm: () => nats.jetstreamManager(), stream: config.ledgerCheckpointStream, key });
}

/** /readyz's line on the ledger's anchoring: no seq and no count of entries (it answers anyone). */
export function checkpointReport(
  db: Kysely<Database>,
  config: Config,
  latest: () => Promise<StoredCheckpoint | null>,
  now: () => Date,
): () => Promise<LedgerCheckpointReport> {
  const startedAt = now();
  return async () => {
    const freshness = await checkpointFreshness(db, {
      checkpoint: await latest(),
      since: startedAt,
      now: now(),
      periodMs: config.ledgerCheckpointEverySeconds * 1000,
    });
    return { signed_at: freshness.signed_at, age_seconds: Math.round(freshness.age_seconds * 10) / 10, stale: freshness.stale };
  };
}

function readinessChecks(db: Kysely<Database>, connection: Connection, nats: NatsConnection): Record<string, DependencyCheck> {
  return {
    postgres: async () => void (await sql`select 1`.execute(db)),
    // The deadline ends the gRPC call itself, so probes of a hung server do not pile up.
    temporal: async (deadline) => void (await connection.withDeadline(deadline, () => connection.workflowService.getSystemInfo({}))),
    nats: async () => {
      if (nats.isClosed()) throw new Error('connection closed');
      await nats.flush();
    },
  };
}

/** The one place the API is wired from its configuration: the server entry point and the test stacks use it. */
export async function buildApi(config: Config, overrides: ApiOverrides = {}): Promise<BuiltApi> {
  const log = overrides.log ?? createLogger({ level: config.logLevel, name: 'vm-tenant-api' });
  const now = overrides.now ?? (() => new Date());
  // Before any connection: the Temporal client's interceptors are wired only if tracing is on (docs/tracing.md).
  startTracing('vm-tenant-api', { warn: (message) => log.warn(message) });
  // The request path's bound on Postgres: each query waits at most the acquire timeout for a
  // connection and the statement timeout (+1 s on the client side) for its answer, then 503.
  const deadlines = {
    statementTimeoutMs: config.databaseStatementTimeoutMs,
    acquireTimeoutMs: config.databaseAcquireTimeoutMs,
    idleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
  };
  const db = overrides.db ?? createDatabase(config.databaseUrl, { applicationName: 'vm-tenant-api', max: 20, ...deadlines });
  if (!overrides.db) await checkDatabaseConnection(db, config.databaseUrl);
  const admin =
    overrides.bootstrapAdminToken === false ? null : await ensureAdminToken(db, { adminToken: config.adminToken, dataDir: config.dataDir, now: now() });
  const rateLimitPool = createPgPool(config.databaseUrl, { applicationName: 'vm-tenant-api-ratelimit', max: 10, asynchronousCommit: true, ...deadlines });
  const { connection, client: temporal, workflows: tenantWorkflows } = await connectTenantWorkflows(config);
  const nats = await connectNats(config.nats, { name: 'vm-tenant-api', waitForServer: true });
  const rateLimiter = createTenantRateLimiter(rateLimitPool);
  const metrics = createApiMetrics(db);
  const checkpointKey = overrides.ledgerCheckpointKey ?? publicKeyFileSource(config.ledgerCheckpointPublicKeyFile);
  const latestCheckpoint = overrides.latestLedgerCheckpoint ?? latestCheckpointFrom(nats, config, checkpointKey);
  // Token cache entries live long while this process hears every revocation (LISTEN), 500 ms otherwise.
  const revocations = new TokenRevocationWatch({ databaseUrl: config.databaseUrl, onRevocation: () => tokenCache.clear(), log });
  const tokenCache = createActiveTokenCache(undefined, undefined, revocations);
  revocations.start();
  const app = createApp({
    services: createServices(db, tenantWorkflows, tokenCache, log, now),
    db,
    tokenCache,
    log,
    now,
    trustedProxies: config.trustedProxies,
    rateLimiter,
    authFailureLimiter: createAuthFailureLimiter({ failuresPerWindow: config.authFailuresPerMinute, windowSeconds: 60 }),
    requestSignatures: { maxAgeSeconds: config.requestSignatureMaxAgeSeconds },
    metrics,
    ledgerCheckpointKey: checkpointKey,
    latestLedgerCheckpoint: latestCheckpoint,
    ledgerCheckpointSeries: new CheckpointSeriesIndex({ jsm: () => nats.jetstreamManager(), stream: config.ledgerCheckpointStream, key: checkpointKey }),
    ledgerCheckpointReport: checkpointReport(db, config, latestCheckpoint, now),
    readiness: readinessChecks(db, connection, nats),
  });
  return {
    app,
    db,
    temporal,
    tenantWorkflows,
    metrics,
    log,
    admin,
    async close() {
      rateLimiter.close?.();
      await Promise.allSettled([overrides.db ? undefined : db.destroy(), rateLimitPool.end(), connection.close(), nats.drain(), revocations.stop()]);
      await flushTracing();
    },
  };
}
