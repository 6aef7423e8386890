import path from 'node:path';
import { isWellFormedToken } from '../auth/token-format';
import { redactUrl } from '../connections/redact-url';
import { postgresUrlWithTls } from '../db/database-url';
import { natsSettingsFromEnv, type NatsSettings } from '../events/nats-env-config';
import { DEFAULT_EVENT_SUBJECT_PREFIX } from '../shared/event-subjects';
import { temporalSettingsFromEnv, type TemporalSettings } from '../temporal/temporal-env-config';
import { envReaders, type Env } from '../shared/env-readers';

export interface Config {
  readonly host: string;
  readonly port: number;
  readonly databaseUrl: string;
  readonly migrationDatabaseUrl: string;
  readonly natsUrl: string;
  /** NATS_URL with NATS_CREDS_FILE and NATS_TLS_* (the connect options come from natsConnectOptions). */
  readonly nats: NatsSettings;
  readonly natsStream: string;
  readonly natsSubjectPrefix: string;
  /** From Temporal's environment configuration (TEMPORAL_* variables and profile file). */
  readonly temporalAddress: string;
  readonly temporalNamespace: string;
  /** Address, TLS, API key and gRPC metadata for Connection.connect / NativeConnection.connect. */
  readonly temporal: TemporalSettings;
  readonly temporalTaskQueue: string;
  readonly temporalCallTimeoutMs: number;
  readonly databaseStatementTimeoutMs: number;
  readonly databaseAcquireTimeoutMs: number;
  /** The services' sessions are ended by Postgres when a transaction stays idle this long. */
  readonly databaseIdleInTransactionTimeoutMs: number;
  readonly fleetUrl: string;
  readonly fleetPort: number;
  readonly adminToken: string | undefined;
  readonly authFailuresPerMinute: number;
  /** Key-bound tokens: how old a request signature may be; seen signatures are kept as long. */
  readonly requestSignatureMaxAgeSeconds: number;
  readonly dataDir: string;
  readonly trustedProxies: readonly string[];
  readonly logLevel: string;
  readonly tenantHistoryUpdateLimit: number;
  readonly tenantMaxInFlight: number;
  readonly vmBootTimeoutMs: number;
  /** The admission resolver: how often it looks, and how old an undecided request must be (docs/admission-protocol.md). */
  readonly admissionResolverEveryMs: number;
  readonly admissionResolveAfterMs: number;
  readonly apiMetricsPort: number;
  readonly workerMetricsPort: number;
  readonly temporalSdkMetricsPort: number;
  /** Signed ledger checkpoints: the stream that holds them, and how often the worker signs the head. */
  readonly ledgerCheckpointStream: string;
  readonly ledgerCheckpointEveryEntries: number;
  readonly ledgerCheckpointEverySeconds: number;
  /** The public half of the worker's checkpoint key, which the API publishes. */
  readonly ledgerCheckpointPublicKeyFile: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const fail = (message: string): Error => new ConfigError(message);
const { str, int } = envReaders(fail);

function url(env: Env, key: string, fallback: string, protocols: readonly string[]): string {
  const value = str(env, key, fallback);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${key} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${key} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return value;
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

/** Reads and validates the environment once; nothing else in the code base reads process.env. */
export function loadConfig(env: Env = process.env): Config {
  const adminToken = env.ADMIN_TOKEN === '' ? undefined : env.ADMIN_TOKEN;
  // Only strings in the token format ever reach the database, so any other ADMIN_TOKEN could never log in.
  if (adminToken !== undefined && !isWellFormedToken(adminToken)) {
    throw new ConfigError('ADMIN_TOKEN must be a vmt_ token (vmt_ + 30 base62 + 6-character CRC32); leave it unset to have one generated into DATA_DIR/admin-token');
  }
  const fleetPort = int(env, 'FLEET_PORT', 9231, 1, 65535);
  const natsStream = token(env, 'NATS_STREAM', 'VM_TENANT');
  const dataDir = path.resolve(str(env, 'DATA_DIR', '.data'));
  const natsUrl = url(env, 'NATS_URL', 'nats://127.0.0.1:4222', ['nats:', 'tls:']);
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
    temporalAddress: hostPort('TEMPORAL_ADDRESS', temporal.connection.address),
    temporalNamespace: temporal.namespace,
    temporal,
    temporalTaskQueue: str(env, 'TEMPORAL_TASK_QUEUE', 'vm-tenant'),
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
    trustedProxies: Object.freeze(str(env, 'TRUSTED_PROXIES', '').split(',').map((s) => s.trim()).filter(Boolean)),
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
