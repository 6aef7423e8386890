import { readFileSync } from 'node:fs';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from 'nats';
import { describeConnectionFailure } from '../connections/connection-failure';
import type { NatsSettings } from './nats-env-config';

/** A failed first connection to NATS, naming the dependency, the server and the cause. */
export class NatsConnectError extends Error {
  override readonly name = 'NatsConnectError';
}

/** The URLs of NATS_URL: one server, or the servers of a cluster separated by commas. */
export function natsUrlsOf(natsUrl: string): URL[] {
  return natsUrl.split(',').map((part) => new URL(part.trim()));
}

/** The server (or the servers of a cluster, comma-separated) of a NATS URL without its login, for messages. */
export function natsServerOf(natsUrl: string): string {
  return natsUrlsOf(natsUrl)
    .map((url) => `${url.protocol}//${url.host}`)
    .join(',');
}

/** The login written into the URLs (the first that has one; natsSettingsFromEnv refuses two different ones). */
function loginOf(urls: readonly URL[]): { user: string; pass: string } | undefined {
  const url = urls.find((u) => u.username);
  return url ? { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) } : undefined;
}

/**
 * The connect options for the NATS settings (or a bare NATS_URL). nats.js takes only host and port
 * from a server URL, so a login written into it (`nats://user:password@host:4222`, what
 * docker-compose.yml passes) is split off into `user`/`pass` here rather than silently dropped.
 * A cluster's servers, comma-separated, become the server list nats.js tries in turn at every
 * (re)connect (it also learns the cluster's other servers from the one it reaches).
 * nats.js upgrades to TLS whenever the server offers it; `tls://` (on any of the servers) or a
 * NATS_TLS_* file makes TLS required, so a server without it is refused rather than spoken to in plaintext.
 */
export function natsConnectOptions(nats: NatsSettings | string): ConnectionOptions {
  const settings: NatsSettings = typeof nats === 'string' ? { url: nats } : nats;
  const urls = natsUrlsOf(settings.url);
  const login = loginOf(urls);
  const { credsFile, tls } = settings;
  const servers = urls.map((url) => `${url.protocol}//${url.host}`);
  return {
    servers: servers.length === 1 ? servers[0] : servers,
    ...(login ?? {}),
    // Read at every (re)connect, so a rotated credentials file is picked up without a restart.
    ...(credsFile ? { authenticator: credsAuthenticator(() => readFileSync(credsFile)) } : {}),
    ...(tls || urls.some((url) => url.protocol === 'tls:') ? { tls: { ...tls } } : {}),
  };
}

// What a server that is not up yet looks like: worth waiting for, unlike a refused certificate or login.
const NOT_UP_YET = new Set(['CONNECTION_REFUSED', 'TIMEOUT', 'ECONNREFUSED', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const HINTS: Record<string, string> = {
  AUTHORIZATION_VIOLATION: 'the server refused the credentials (NATS_CREDS_FILE, or the login in NATS_URL)',
};

function connectFailure(settings: NatsSettings, error: unknown): NatsConnectError {
  const urls = natsUrlsOf(settings.url);
  const code = (error as { code?: string } | null)?.code;
  const transport = settings.tls || urls.some((url) => url.protocol === 'tls:') ? 'TLS' : 'plaintext';
  const login = settings.credsFile ? ', credentials file' : loginOf(urls) ? ', user/password' : '';
  const cause = (code && HINTS[code]) ?? describeConnectionFailure(error);
  return new NatsConnectError(`nats at ${natsServerOf(settings.url)} (${transport}${login}): ${cause}`, { cause: error });
}

/**
 * The long-lived connection of a service: reconnects forever once up. A first attempt that fails on
 * the certificate or the login stops the start with a NatsConnectError; with `waitForServer`, a
 * server that is not up yet is waited for (nats.js would wait just as patiently for a wrong CA, so
 * the first attempt is made without waiting). `inboxPrefix`: replies come to `<inboxPrefix>.…` instead of
 * `_INBOX.…`, for a user whose permissions allow only its own inboxes (a tenant's; docs/events.md).
 */
export async function connectNats(settings: NatsSettings, options: { name: string; waitForServer: boolean; inboxPrefix?: string }): Promise<NatsConnection> {
  const base: ConnectionOptions = {
    ...natsConnectOptions(settings),
    name: options.name,
    maxReconnectAttempts: -1,
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
  };
  try {
    return await connect(base);
  } catch (error) {
    const code = (error as { code?: string } | null)?.code;
    if (!options.waitForServer || !code || !NOT_UP_YET.has(code)) throw connectFailure(settings, error);
  }
  return connect({ ...base, waitOnFirstConnect: true });
}
