import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createFleetState } from './fleet-state';
import { createSimControls } from './sim-controls';
import { createSimulatorApp } from './simulator-app';
import type { SimulatorConfig } from './simulator-config';
import { coalescingSaver, createStateStore } from './state-store';

export interface StartSimulatorDeps {
  config: SimulatorConfig;
  now?: () => number;
  random?: () => number;
  /** How long close() lets in-flight answers finish before cutting connections. */
  closeGraceMs?: number;
}

export interface RunningSimulator {
  /** e.g. http://127.0.0.1:9231 */
  readonly url: string;
  /** Stops accepting, releases held requests, waits for in-flight ones, writes the state. */
  close(): Promise<void>;
}

/** Wires the store, state, controls and app, and listens. Used by server.ts and by tests (port 0). */
export async function startSimulator(deps: StartSimulatorDeps): Promise<RunningSimulator> {
  const { config } = deps;
  const store = createStateStore(config.stateFile);
  const saver = coalescingSaver(store, config.stateWriteDelayMs);
  const controls = createSimControls({
    boot_ms: config.bootMs,
    failure_rate: config.failureRate,
    latency_ms: config.latencyMs,
    fault: 'none',
    refused_images: [],
  });
  const state = createFleetState({
    hosts: { count: config.hosts, vcpus: config.hostVcpus, memory_mb: config.hostMemoryMb, storage_gb: config.hostStorageGb },
    controls: () => controls.get(),
    now: deps.now ?? Date.now,
    random: deps.random ?? Math.random,
    initial: store.load(),
    onChange: (read) => saver.save(read),
  });
  const shutdown = new AbortController();
  const server = http.createServer(createSimulatorApp({ state, controls, shutdown: shutdown.signal }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), deps.closeGraceMs ?? 5_000);
        server.close((err) => {
          clearTimeout(force);
          try {
            // Every change is already on disk (or pending, when coalesced); this last write is the flush of record.
            saver.flush();
            store.save(state.snapshot());
          } catch (saveErr) {
            return reject(saveErr);
          }
          if (err && (err as NodeJS.ErrnoException).code !== 'ERR_SERVER_NOT_RUNNING') return reject(err);
          resolve();
        });
        shutdown.abort();
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
