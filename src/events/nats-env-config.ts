import { readableFileFromEnv } from '../connections/readable-file';
import type { Env } from '../shared/env-readers';
import { natsUrlsOf } from './nats-connection';

/** How to reach NATS: the server URL (with an optional login in it), a credentials file, TLS files. */
export interface NatsSettings {
  readonly url: string;
  /** A `.creds` file (user JWT and NKEY seed, as `nsc` writes it); read at every (re)connect. */
  readonly credsFile?: string;
  /** Present when TLS is configured by file: the CA to verify the server with, and a client pair. */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
}

/**
 * NATS_CREDS_FILE, NATS_TLS_CA_FILE and NATS_TLS_CERT_FILE/NATS_TLS_KEY_FILE next to NATS_URL
 * (already validated). Any NATS_TLS_* file turns TLS on, as the `tls://` scheme does; without a CA
 * file the system roots verify the server.
 */
export function natsSettingsFromEnv(env: Env, url: string, fail: (message: string) => Error): NatsSettings {
  const file = (key: string) => readableFileFromEnv(env, key, fail);
  const credsFile = file('NATS_CREDS_FILE');
  // NATS_URL may list a cluster's servers, comma-separated (already validated as URLs).
  const servers = natsUrlsOf(url);
  const withLogin = [...new Set(servers.filter((server) => server.username).map((server) => `${server.username}:${server.password}`))];
  if (credsFile && withLogin.length > 0) throw fail('NATS_CREDS_FILE and a login in NATS_URL are two credentials: set one');
  // One connection, one login: nats.js sends the same one to every server of the list.
  if (withLogin.length > 1) throw fail('NATS_URL names several servers with different logins: give them one login (or NATS_CREDS_FILE)');
  const caFile = file('NATS_TLS_CA_FILE');
  const certFile = file('NATS_TLS_CERT_FILE');
  const keyFile = file('NATS_TLS_KEY_FILE');
  if ((certFile === undefined) !== (keyFile === undefined)) throw fail('NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together: set both or neither');
  const tls = caFile || certFile ? Object.freeze({ caFile, certFile, keyFile }) : undefined;
  return Object.freeze({ url, credsFile, tls });
}
