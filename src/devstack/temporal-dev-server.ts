import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { getFreePort } from './free-port';
import { describeExit, linePrefix, spawnManaged, type ManagedChild, type SpawnManagedOptions } from './child-process';

export interface TemporalDevServerOptions {
  /** Path of the `temporal` CLI (see ensureTemporalBinary). */
  temporalBin: string;
  ip?: string;
  /** Frontend gRPC port; a free one when omitted. */
  port?: number;
  /** Web UI port; ignored with `headless`. A free one when omitted. */
  uiPort?: number;
  headless?: boolean;
  /** SQLite file for persistent state; in-memory when omitted. */
  dbFilename?: string;
  namespace?: string;
  /** Search attributes to register, e.g. { TenantId: 'Keyword' }. */
  searchAttributes?: Readonly<Record<string, string>>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Port of the server's Prometheus metrics (the benchmark counts heartbeats there); none when omitted. */
  metricsPort?: number;
  readyTimeoutMs?: number;
  /** Output handling and process group, as for spawnManaged (default: prefixed with [temporal]). */
  onLine?: SpawnManagedOptions['onLine'];
  detached?: boolean;
  /** Called with the process as soon as it is spawned, before it is ready. */
  onSpawn?: (child: ManagedChild) => void;
}

export interface TemporalDevServer {
  /** host:port of the frontend, for TEMPORAL_ADDRESS. */
  readonly address: string;
  /** Web UI URL, undefined when headless. */
  readonly uiUrl: string | undefined;
  readonly namespace: string;
  readonly process: ManagedChild;
  /** SIGTERM, then SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

export const DEFAULT_SEARCH_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({ TenantId: 'Keyword' });

export class TemporalDevServerError extends Error {
  override readonly name = 'TemporalDevServerError';
}

/**
 * Starts `temporal server start-dev` and resolves once its frontend answers and the
 * namespace has the requested search attributes.
 */
export async function startTemporalDevServer(options: TemporalDevServerOptions): Promise<TemporalDevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const port = options.port ?? (await getFreePort(ip));
  const headless = options.headless ?? false;
  const uiPort = headless ? undefined : (options.uiPort ?? (await getFreePort(ip)));
  const namespace = options.namespace ?? 'default';
  const searchAttributes = options.searchAttributes ?? DEFAULT_SEARCH_ATTRIBUTES;

  const args = ['server', 'start-dev', '--ip', ip, '--port', String(port), '--namespace', namespace];
  if (uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (options.dbFilename) args.push('--db-filename', options.dbFilename);
  for (const [key, type] of Object.entries(searchAttributes)) args.push('--search-attribute', `${key}=${type}`);
  args.push('--log-level', options.logLevel ?? 'warn');
  if (options.metricsPort !== undefined) args.push('--metrics-port', String(options.metricsPort));

  const child = spawnManaged('temporal', options.temporalBin, args, {
    onLine: options.onLine ?? defaultOnLine(),
    detached: options.detached,
    // Its shutdown prints a page of "connection refused" warnings from its own internal workers.
    quietAfterStop: true,
  });
  options.onSpawn?.(child);
  const address = `${ip}:${port}`;
  const server: TemporalDevServer = {
    address,
    uiUrl: uiPort === undefined ? undefined : `http://${ip}:${uiPort}`,
    namespace,
    process: child,
    async stop(timeoutMs = 10_000) {
      await child.stop(timeoutMs);
    },
  };

  try {
    await waitUntilReady(child, address, namespace, Object.keys(searchAttributes), options.readyTimeoutMs ?? 60_000);
  } catch (error) {
    await child.stop(2_000);
    throw error;
  }
  return server;
}

/** Prefixed output without the start-up warning every fresh dev server prints. */
function defaultOnLine(): NonNullable<SpawnManagedOptions['onLine']> {
  const prefix = linePrefix('temporal');
  return (line, stream) => {
    if (line.includes('Cluster Id in Cluster Metadata config is not a valid uuid')) return;
    (stream === 'stdout' ? process.stdout : process.stderr).write(`${prefix} ${line}\n`);
  };
}

async function waitUntilReady(child: ManagedChild, address: string, namespace: string, searchAttributes: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.hasExited()) {
      const exit = await child.exited;
      await sleep(100); // let the last output lines arrive
      throw new TemporalDevServerError(
        `temporal server start-dev ${describeExit(exit)} before it was ready on ${address}:\n${child.recentOutput().join('\n')}`,
      );
    }
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 1_000 });
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      const missing = searchAttributes.filter((key) => !(key in (customAttributes ?? {})));
      if (missing.length === 0) return;
      lastError = new Error(`search attributes not registered yet: ${missing.join(', ')}`);
    } catch (error) {
      lastError = error;
    } finally {
      await connection?.close().catch(() => undefined);
    }
    await sleep(250);
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  throw new TemporalDevServerError(
    `Temporal dev server on ${address} was not ready after ${timeoutMs} ms (${why}). Last output:\n${child.recentOutput().join('\n')}`,
  );
}
