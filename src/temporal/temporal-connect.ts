import tls from 'node:tls';
import { Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { waitUntilReachable, type WaitOptions } from '../connections/wait-until-reachable';
import type { TemporalConnectionOptions } from './temporal-env-config';

/** A failed first connection to Temporal, naming the dependency, the address and the cause (a TLS or credential problem, unreachable). */
export class TemporalConnectError extends Error {
  override readonly name = 'TemporalConnectError';
}

const HANDSHAKE_TIMEOUT_MS = 5_000;

/** OpenSSL's words for the usual misconfigurations, in the variables' terms. */
const KNOWN_TLS_PROBLEMS: Record<string, string> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the server requires a client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the server refused the client certificate',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the server does not trust the CA of the client certificate',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate is not valid for the server name (TEMPORAL_TLS_SERVER_NAME)',
};

/**
 * The gRPC clients report a failed TLS handshake only as "Failed to connect before the deadline".
 * When TLS is on, one handshake of our own with the same CA, server name and client pair names
 * the cause (an unknown CA, a name mismatch, a refused client certificate); null when it succeeds.
 */
async function tlsHandshakeProblem(options: TemporalConnectionOptions): Promise<string | null> {
  if (!options.tls) return null;
  const settings = options.tls === true ? {} : options.tls;
  const separator = options.address.lastIndexOf(':');
  const host = options.address.slice(0, separator);
  const port = Number(options.address.slice(separator + 1));
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port,
      servername: settings.serverNameOverride ?? host,
      ca: settings.serverRootCACertificate ? Buffer.from(settings.serverRootCACertificate) : undefined,
      cert: settings.clientCertPair ? Buffer.from(settings.clientCertPair.crt) : undefined,
      key: settings.clientCertPair ? Buffer.from(settings.clientCertPair.key) : undefined,
      ALPNProtocols: ['h2'],
    });
    const done = (problem: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(null), HANDSHAKE_TIMEOUT_MS);
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const known = error.code ? KNOWN_TLS_PROBLEMS[error.code] : undefined;
      done(`TLS handshake failed: ${known ?? error.message.split('\n')[0]}${error.code ? ` (${error.code})` : ''}`);
    });
    // TLS 1.3 servers refuse a missing client certificate after the handshake: wait for that answer.
    socket.once('secureConnect', () => setTimeout(() => done(null), 500));
    socket.once('close', () => done(null));
  });
}

async function connectFailure(options: TemporalConnectionOptions, error: unknown): Promise<TemporalConnectError> {
  const reported = error instanceof Error ? error.message : String(error);
  const cause = (await tlsHandshakeProblem(options).catch(() => null)) ?? reported;
  const transport = options.tls ? 'TLS' : 'plaintext';
  return new TemporalConnectError(`temporal at ${options.address} (${transport}${options.apiKey ? ', API key' : ''}): ${cause}`, { cause: error });
}

/** `connect` with the settings, waiting while the server is not up (yet); a TLS or credential failure stops the start. */
function connectWhenReachable<T>(
  options: TemporalConnectionOptions,
  wait: WaitOptions,
  connect: (options: TemporalConnectionOptions) => Promise<T>,
): Promise<T> {
  return waitUntilReachable(
    `temporal at ${options.address}`,
    async () => {
      try {
        return await connect(options);
      } catch (error) {
        throw await connectFailure(options, error);
      }
    },
    wait,
  );
}

/**
 * Connection.connect for the API and tools; every call uses the TLS, API key and metadata of the
 * settings. A server that is not up (yet) is waited for, with a warning at most every 30 s
 * (waitUntilReachable).
 */
export function connectTemporalClient(options: TemporalConnectionOptions, wait: WaitOptions = {}): Promise<Connection> {
  return connectWhenReachable(options, wait, (o) => Connection.connect(o));
}

/** NativeConnection.connect for workers, waiting as connectTemporalClient does. */
export function connectTemporalWorker(options: TemporalConnectionOptions, wait: WaitOptions = {}): Promise<NativeConnection> {
  return connectWhenReachable(options, wait, (o) => NativeConnection.connect(o));
}
