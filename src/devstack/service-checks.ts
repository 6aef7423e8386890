import pg from 'pg';
import { natsConnectOptions } from '../events/nats-connection';
import { connect } from 'nats';
import { redactUrl } from '../connections/redact-url';
import { reasonOf } from '../shared/error-causes';

/** Commands that start the local services on a development machine (no Docker here). */
export const START_POSTGRES_COMMAND = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';
export const START_NATS_COMMAND =
  'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log';

export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError';
  constructor(
    readonly services: readonly ('postgres' | 'nats')[],
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Connects to the Postgres server of `connectionString`. A database that does not exist
 * yet still counts as reachable (migrations create it).
 */
export async function checkPostgres(connectionString: string, timeoutMs = 3_000): Promise<void> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    if ((error as { code?: string }).code === '3D000') return; // database missing, server up
    throw new ServiceUnavailableError(
      ['postgres'],
      `PostgreSQL is not reachable at ${redactUrl(connectionString)} (${reasonOf(error)}).\n` +
        `Start it with:\n  ${START_POSTGRES_COMMAND}\n` +
        'or point DATABASE_URL / MIGRATION_DATABASE_URL at a running server.',
      { cause: error },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Connects to NATS and checks that JetStream is enabled on it. */
export async function checkNats(natsUrl: string, timeoutMs = 3_000): Promise<void> {
  const howToStart = `Start it with:\n  ${START_NATS_COMMAND}\nor point NATS_URL at a running server started with -js.`;
  let nc;
  try {
    nc = await connect({ ...natsConnectOptions(natsUrl), timeout: timeoutMs, reconnect: false, maxReconnectAttempts: 0 });
  } catch (error) {
    throw new ServiceUnavailableError(['nats'], `NATS is not reachable at ${redactUrl(natsUrl)} (${reasonOf(error)}).\n${howToStart}`, {
      cause: error,
    });
  }
  try {
    const jsm = await nc.jetstreamManager({ timeout: timeoutMs });
    await jsm.getAccountInfo();
  } catch (error) {
    throw new ServiceUnavailableError(['nats'], `NATS at ${redactUrl(natsUrl)} answers but JetStream is not enabled (${reasonOf(error)}).\n${howToStart}`, {
      cause: error,
    });
  } finally {
    await nc.close().catch(() => undefined);
  }
}

/** Checks both services, reporting every one that is down in a single error. */
export async function checkServices(urls: { postgresUrl: string; natsUrl: string }): Promise<void> {
  const results = await Promise.allSettled([checkPostgres(urls.postgresUrl), checkNats(urls.natsUrl)]);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.length === 0) return;
  if (failures.length === 1) throw failures[0];
  throw new ServiceUnavailableError(
    failures.flatMap((f) => (f instanceof ServiceUnavailableError ? f.services : [])),
    failures.map((f) => (f instanceof Error ? f.message : String(f))).join('\n\n'),
    { cause: failures },
  );
}
