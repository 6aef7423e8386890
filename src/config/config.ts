import path from 'node:path';
import { isWellFormedToken } from '../auth/token-format';
import { redactUrl } from '../connections/redact-url';
import { postgresUrlWithTls } from '../db/database-url';
import { natsSettingsFromEnv, type NatsSettings } from '../events/nats-env-config';
import { DEFAULT_EVENT_SUBJECT_PREFIX } from '../shared/event-subjects';
import { temporalSettingsFromEnv, type TemporalSettings } from '../temporal/temporal-env-config';
import { envReaders, type Env } from '../shared/env-readers';

/**
 * The configuration of the API, the worker and the command-line tools. Every environment variable
 * they read is named by an `@env NAME — meaning` tag on the field it sets (several names, or a
 * pattern with `*`, for a group); scripts/generate-config-reference.ts turns these tags and the
 * defaults and bounds of loadConfig below into docs/configuration.md, and a test fails when that
 * page is stale or a variable loadConfig reads has no tag.
 */
export interface Config {
  /** @env HOST — address the API, its metrics endpoint and the worker's metrics endpoints listen on; set 0.0.0.0 in a container or pod, or nothing outside this machine reaches them */
  readonly host: string;
  /** @env PORT — port of the HTTP API (0: any free port) */
  readonly port: number;
  /** @env DATABASE_URL — Postgres of the API, the worker and service-fs, as the service login vm_tenant_app (never the owner); `?sslmode=verify-full&sslrootcert=…` for TLS (docs/deploy.md) */
  readonly databaseUrl: string;
  /**
   * @env MIGRATION_DATABASE_URL — Postgres as the migration login (owns the schema; migrate.js only)
   * @env PGSSLROOTCERT — unset: the CA for sslmode=verify-full when the URLs name no sslrootcert (node-postgres takes TLS settings only from the URL; this is added to both); docs/deploy.md
   */
  readonly migrationDatabaseUrl: string;
  /** @env NATS_URL — NATS server, `tls://` to require TLS; a login goes in it (`nats://user:password@host:4222`); the servers of a cluster separated by commas (`nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222`), tried in turn at every (re)connect */
  readonly natsUrl: string;
  /**
   * NATS_URL with NATS_CREDS_FILE and NATS_TLS_* (the connect options come from natsConnectOptions).
   * @env NATS_CREDS_FILE — unset: a NATS credentials file (user JWT and NKEY seed, read again at every reconnect) instead of a login in NATS_URL
   * @env NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE — unset: a CA to verify the server, and a client pair (both or neither); any of them makes TLS required
   */
  readonly nats: NatsSettings;
  /** @env NATS_STREAM — JetStream stream of the lifecycle events */
  readonly natsStream: string;
  /** @env NATS_SUBJECT_PREFIX — first token of the event subjects (`<prefix>.<tenant>.vm.<event>`, docs/events.md) */
  readonly natsSubjectPrefix: string;
  /** @env NATS_STREAM_MAX_AGE_HOURS — events older than this leave the event stream (0: no age limit); the ledger keeps them */
  readonly natsStreamMaxAgeHours: number;
  /** @env NATS_STREAM_MAX_BYTES — size limit of the event stream (JetStream's max_bytes); JetStream reserves it from its storage (max_file_store) when the stream is created, and refuses a stream that does not fit */
  readonly natsStreamMaxBytes: number;
  /** @env NATS_STREAM_DISCARD — at a limit, `old`: the oldest events leave (publishing goes on); `new`: publishes are refused and the relay waits with its cursor until there is room */
  readonly natsStreamDiscard: 'old' | 'new';
  /** @env NATS_STREAM_REPLICAS — copies of the event stream and of the checkpoint stream on a NATS JetStream cluster (1 on a single server; 3 on a three-node cluster, so a node lost keeps both streams writable: docs/deploy.md) */
  readonly natsStreamReplicas: number;
  /** @env NATS_TENANT_STREAMS — `on`: the worker gives each tenant a stream of its own when it is created, whose sequence counts only its events, and deletes it with the tenant (docs/events.md); `off`: only `service-fs tenant-stream` makes them */
  readonly natsTenantStreams: boolean;
  /** @env TEMPORAL_ADDRESS — Temporal frontend, host:port (Temporal's own variable, as the Temporal CLI reads it) */
  readonly temporalAddress: string;
  /** @env TEMPORAL_NAMESPACE — Temporal namespace (needs the TenantId Keyword search attribute) */
  readonly temporalNamespace: string;
  /**
   * Address, TLS, API key and gRPC metadata for Connection.connect / NativeConnection.connect.
   * @env TEMPORAL_API_KEY, TEMPORAL_TLS*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE, TEMPORAL_CODEC_*, TEMPORAL_GRPC_META_*, HOME, XDG_CONFIG_HOME — unset: Temporal's own environment configuration (`@temporalio/envconfig`, as the Temporal CLI reads it): an API key, mTLS (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH), a CA (TEMPORAL_TLS_SERVER_CA_CERT_PATH), a server name, or a profile of TEMPORAL_CONFIG_FILE (default ~/.config/temporalio/temporal.toml, hence HOME and XDG_CONFIG_HOME); docs/deploy.md
   */
  readonly temporal: TemporalSettings;
  /** @env TEMPORAL_TASK_QUEUE — task queue of the tenant workflows and their activities */
  readonly temporalTaskQueue: string;
  /**
   * @env WORKER_MAX_CACHED_WORKFLOWS — tenant workflows a worker keeps in memory (sticky cache); one
   * evicted is rebuilt from its history on its next task. Bounds the worker's memory (docs/performance.md)
   */
  readonly workerMaxCachedWorkflows: number;
  /** @env TEMPORAL_CALL_TIMEOUT_MS — deadline of every Temporal call of the API (queueing and retries included); past it 503 dependency_unavailable naming temporal */
  readonly temporalCallTimeoutMs: number;
  /** @env DATABASE_STATEMENT_TIMEOUT_MS — Postgres statement_timeout of the API and the worker; the client stops waiting for an answer 1 s later */
  readonly databaseStatementTimeoutMs: number;
  /** @env DATABASE_ACQUIRE_TIMEOUT_MS — longest wait for a pooled or new connection; past it 503 naming postgres */
  readonly databaseAcquireTimeoutMs: number;
  /** @env DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS — Postgres ends the services' sessions whose transaction stays idle this long (a stuck one would hold a ledger chain lock) */
  readonly databaseIdleInTransactionTimeoutMs: number;
  /** @env FLEET_URL — the fleet controller (default: the simulator on FLEET_PORT) */
  readonly fleetUrl: string;
  /** @env FLEET_PORT — port of the fleet simulator, and of the default FLEET_URL */
  readonly fleetPort: number;
  /** @env ADMIN_TOKEN — the platform administrator's vmt_ token; unset: one is generated into DATA_DIR/admin-token */
  readonly adminToken: string | undefined;
  /** @env AUTH_FAILURES_PER_MINUTE — failed authentications per client address per minute, per API process */
  readonly authFailuresPerMinute: number;
  /** @env REQUEST_SIGNATURE_MAX_AGE_SECONDS — how old the signature of a key-bound token's request may be; seen signatures are kept as long (docs/bound-tokens.md) */
  readonly requestSignatureMaxAgeSeconds: number;
  /** @env DATA_DIR — the generated admin token, the worker's ledger checkpoint key */
  readonly dataDir: string;
  /** @env TRUSTED_PROXIES — comma-separated addresses of proxies whose X-Forwarded-For is believed; empty: the audited client address is the socket's */
  readonly trustedProxies: readonly string[];
  /** @env LOG_LEVEL — pino level: fatal, error, warn, info, debug, trace */
  readonly logLevel: string;
  /** @env TENANT_WORKFLOW_UPDATE_LIMIT — updates per tenant-workflow run before it continues as new */
  readonly tenantHistoryUpdateLimit: number;
  /** @env TENANT_MAX_IN_FLIGHT — VMs per tenant booting or being destroyed at once; more is 429 in_flight_limit */
  readonly tenantMaxInFlight: number;
  /** @env VM_BOOT_TIMEOUT_MS — a VM not running this long after admission is failed (boot_timeout), destroyed at the fleet and released */
  readonly vmBootTimeoutMs: number;
  /**
   * The admission resolver: how often it looks, and how old an undecided request must be (docs/admission-protocol.md).
   * @env ADMISSION_RESOLVER_EVERY_MS — how often each worker's admission resolver looks for requests and destroys nobody saw decided
   */
  readonly admissionResolverEveryMs: number;
  /** @env ADMISSION_RESOLVE_AFTER_MS — how long after their last change (past TEMPORAL_CALL_TIMEOUT_MS) it sends them again */
  readonly admissionResolveAfterMs: number;
  /** @env API_METRICS_PORT — the API's Prometheus /metrics (0: off) */
  readonly apiMetricsPort: number;
  /** @env WORKER_METRICS_PORT — the worker's Prometheus /metrics and its liveness /healthz (0: off) */
  readonly workerMetricsPort: number;
  /** @env TEMPORAL_SDK_METRICS_PORT — the Temporal SDK's own worker metrics (0: off) */
  readonly temporalSdkMetricsPort: number;
  /**
   * Signed ledger checkpoints: the stream that holds them, and how often the worker signs the head.
   * @env LEDGER_CHECKPOINT_STREAM — JetStream stream of the signed checkpoints (subject `<NATS_SUBJECT_PREFIX>_ledger.checkpoint`)
   */
  readonly ledgerCheckpointStream: string;
  /** @env LEDGER_CHECKPOINT_EVERY_ENTRIES — the worker signs the head after this many entries… */
  readonly ledgerCheckpointEveryEntries: number;
  /** @env LEDGER_CHECKPOINT_EVERY_SECONDS — …or this many seconds, whichever comes first */
  readonly ledgerCheckpointEverySeconds: number;
  /**
   * The public half of the worker's checkpoint key, which the API publishes.
   * @env LEDGER_CHECKPOINT_PUBLIC_KEY_FILE — the worker writes the public half of its checkpoint key here too; the API reads and publishes it; default key of service-fs verify
   */
  readonly ledgerCheckpointPublicKeyFile: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const fail = (message: string): Error => new ConfigError(message);
const { str, int } = envReaders(fail);

/** A URL of one of `protocols`; with `list`, one or more of them separated by commas (the servers of a cluster). */
function url(env: Env, key: string, fallback: string, protocols: readonly string[], options: { list?: boolean } = {}): string {
  const value = str(env, key, fallback);
  const parts = options.list ? value.split(',').map((part) => part.trim()) : [value];
  for (const part of parts) {
    let parsed: URL;
    try {
      parsed = new URL(part);
    } catch {
      throw new ConfigError(parts.length > 1 ? `${key} holds an invalid URL (${JSON.stringify(part)})` : `${key} is not a valid URL`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new ConfigError(`${key} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
    }
  }
  return parts.join(',');
}

/** A NATS stream name or subject token: no dots, wildcards or spaces. */
function token(env: Env, key: string, fallback: string): string {
  const value = str(env, key, fallback);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw new ConfigError(`${key} must be 1-64 characters of letters, digits, "_" and "-"`);
  return value;
}

function hostPort(key: string, value: string): string {
  if (!/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/.test(value)) throw new ConfigError(`${key} must be host:port, got ${JSON.stringify(value)}`);
  return value;
}

function oneOf<T extends string>(env: Env, key: string, fallback: T, allowed: readonly T[]): T {
  const value = str(env, key, fallback);
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(`${key} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  return value as T;
}

/** Reads and validates the environment once; nothing else in the code base reads process.env. */
export function loadConfig(env: Env = process.env): Config {
  const adminToken = env.ADMIN_TOKEN === '' ? undefined : env.ADMIN_TOKEN;
  // Only strings in the token format ever reach the database, so any other ADMIN_TOKEN could never log in.
  if (adminToken !== undefined && !isWellFormedToken(adminToken)) {
    throw new ConfigError(
      'ADMIN_TOKEN must be a vmt_ token (vmt_ + 30 base62 + 6-character CRC32); leave it unset to have one generated into DATA_DIR/admin-token',
    );
  }
  const fleetPort = int(env, 'FLEET_PORT', 9231, 1, 65535);
  const natsStream = token(env, 'NATS_STREAM', 'VM_TENANT');
  const dataDir = path.resolve(str(env, 'DATA_DIR', '.data'));
  const natsUrl = url(env, 'NATS_URL', 'nats://127.0.0.1:4222', ['nats:', 'tls:'], { list: true });
  const postgresUrl = (key: string, fallback: string) => postgresUrlWithTls(env, key, url(env, key, fallback, ['postgres:', 'postgresql:']), fail);
  const temporal = temporalSettingsFromEnv(env, { address: '127.0.0.1:7233', namespace: 'default' }, fail);
  return Object.freeze({
    host: str(env, 'HOST', '127.0.0.1'),
    port: int(env, 'PORT', 9221, 0, 65535),
    databaseUrl: postgresUrl('DATABASE_URL', 'postgres://vm_tenant_app@127.0.0.1:5432/vm_tenant'),
    migrationDatabaseUrl: postgresUrl('MIGRATION_DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/vm_tenant'),
    natsUrl,
    nats: natsSettingsFromEnv(env, natsUrl, fail),
    natsStream,
    natsSubjectPrefix: token(env, 'NATS_SUBJECT_PREFIX', DEFAULT_EVENT_SUBJECT_PREFIX),
    // The event stream mirrors the ledger: bounded by default (jetstream-stream.ts says what happens at a limit).
    natsStreamMaxAgeHours: int(env, 'NATS_STREAM_MAX_AGE_HOURS', 30 * 24, 0, 10 * 365 * 24),
    natsStreamMaxBytes: int(env, 'NATS_STREAM_MAX_BYTES', 1024 ** 3, 1024 ** 2, Number.MAX_SAFE_INTEGER),
    natsStreamDiscard: oneOf(env, 'NATS_STREAM_DISCARD', 'old', ['old', 'new'] as const),
    natsStreamReplicas: int(env, 'NATS_STREAM_REPLICAS', 1, 1, 5),
    natsTenantStreams: oneOf(env, 'NATS_TENANT_STREAMS', 'off', ['off', 'on'] as const) === 'on',
    temporalAddress: hostPort('TEMPORAL_ADDRESS', temporal.connection.address),
    temporalNamespace: temporal.namespace,
    temporal,
    temporalTaskQueue: str(env, 'TEMPORAL_TASK_QUEUE', 'vm-tenant'),
    workerMaxCachedWorkflows: int(env, 'WORKER_MAX_CACHED_WORKFLOWS', 1000, 1, 100_000),
    // Deadlines of outbound calls (docs/reliability.md): past them a request answers 503.
    temporalCallTimeoutMs: int(env, 'TEMPORAL_CALL_TIMEOUT_MS', 10_000, 100, 600_000),
    databaseStatementTimeoutMs: int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5_000, 100, 3_600_000),
    databaseAcquireTimeoutMs: int(env, 'DATABASE_ACQUIRE_TIMEOUT_MS', 5_000, 100, 600_000),
    // Transactions of the services run queries only, for milliseconds; one idle this long is stuck,
    // and may hold a ledger chain lock (the commit horizon waits for it): three default signing periods.
    databaseIdleInTransactionTimeoutMs: int(env, 'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', 30_000, 1_000, 3_600_000),
    fleetUrl: url(env, 'FLEET_URL', `http://127.0.0.1:${fleetPort}`, ['http:', 'https:']),
    fleetPort,
    adminToken,
    authFailuresPerMinute: int(env, 'AUTH_FAILURES_PER_MINUTE', 60, 1, 1_000_000),
    requestSignatureMaxAgeSeconds: int(env, 'REQUEST_SIGNATURE_MAX_AGE_SECONDS', 300, 5, 3600),
    dataDir,
    trustedProxies: Object.freeze(
      str(env, 'TRUSTED_PROXIES', '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    tenantHistoryUpdateLimit: int(env, 'TENANT_WORKFLOW_UPDATE_LIMIT', 1000, 2, 2000),
    // Each VM in flight is a pending activity; Temporal refuses more than 2,000 per workflow.
    tenantMaxInFlight: int(env, 'TENANT_MAX_IN_FLIGHT', 1000, 1, 1500),
    vmBootTimeoutMs: int(env, 'VM_BOOT_TIMEOUT_MS', 15 * 60_000, 1000, 24 * 3_600_000),
    admissionResolverEveryMs: int(env, 'ADMISSION_RESOLVER_EVERY_MS', 5_000, 100, 3_600_000),
    // Past TEMPORAL_CALL_TIMEOUT_MS, so no API still waits on the request it resends.
    admissionResolveAfterMs: int(env, 'ADMISSION_RESOLVE_AFTER_MS', 15_000, 1_000, 3_600_000),
    // 0 turns the endpoint off.
    apiMetricsPort: int(env, 'API_METRICS_PORT', 9462, 0, 65535),
    workerMetricsPort: int(env, 'WORKER_METRICS_PORT', 9464, 0, 65535),
    temporalSdkMetricsPort: int(env, 'TEMPORAL_SDK_METRICS_PORT', 9465, 0, 65535),
    ledgerCheckpointStream: token(env, 'LEDGER_CHECKPOINT_STREAM', `${natsStream}_CHECKPOINTS`),
    ledgerCheckpointEveryEntries: int(env, 'LEDGER_CHECKPOINT_EVERY_ENTRIES', 100, 1, 1_000_000_000),
    ledgerCheckpointEverySeconds: int(env, 'LEDGER_CHECKPOINT_EVERY_SECONDS', 10, 1, 86_400),
    ledgerCheckpointPublicKeyFile: path.resolve(str(env, 'LEDGER_CHECKPOINT_PUBLIC_KEY_FILE', path.join(dataDir, 'ledger-checkpoint-key.pub.pem'))),
  });
}

/** The part of the configuration that is safe to log: no secrets, no credentials in URLs. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    port: config.port,
    databaseUrl: redactUrl(config.databaseUrl),
    natsUrl: redactUrl(config.natsUrl),
    temporal: config.temporal.summary,
    temporalTaskQueue: config.temporalTaskQueue,
    temporalCallTimeoutMs: config.temporalCallTimeoutMs,
    databaseStatementTimeoutMs: config.databaseStatementTimeoutMs,
    databaseAcquireTimeoutMs: config.databaseAcquireTimeoutMs,
    databaseIdleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
    fleetUrl: redactUrl(config.fleetUrl),
    adminToken: config.adminToken ? 'set' : 'generated',
  };
}
