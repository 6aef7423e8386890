import path from 'node:path';
import { envReaders, type Env } from '../shared/env-readers';

/**
 * Configuration of the fleet simulator process. The simulator stands in for a separate service, so it
 * reads its own variables (all FLEET_*); like loadConfig, it is the only reader of the environment
 * in its process.
 */
export interface SimulatorConfig {
  readonly port: number;
  readonly host: string;
  readonly stateFile: string;
  /** 0: every change is written before the answer that reports it; more: changes are coalesced (see coalescingSaver). */
  readonly stateWriteDelayMs: number;
  /** Initial values of the run-time controls (PUT /_sim/config changes them until restart). */
  readonly bootMs: number;
  readonly failureRate: number;
  readonly latencyMs: number;
  readonly hosts: number;
  readonly hostVcpus: number;
  readonly hostMemoryMb: number;
  readonly hostStorageGb: number;
}

export class SimulatorConfigError extends Error {
  override readonly name = 'SimulatorConfigError';
}

const { str, int } = envReaders((message) => new SimulatorConfigError(message));

function fraction(env: Env, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(raw)) throw new SimulatorConfigError(`${key} must be a number from 0 to 1, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (value > 1) throw new SimulatorConfigError(`${key} must be a number from 0 to 1, got ${value}`);
  return value;
}

export function loadSimulatorConfig(env: Env): SimulatorConfig {
  return Object.freeze({
    port: int(env, 'FLEET_PORT', 9231, 0, 65535),
    host: str(env, 'FLEET_HOST', '127.0.0.1'),
    stateFile: path.resolve(str(env, 'FLEET_STATE_FILE', '.data/fleet-state.json')),
    stateWriteDelayMs: int(env, 'FLEET_STATE_WRITE_DELAY_MS', 0, 0, 60_000),
    bootMs: int(env, 'FLEET_BOOT_MS', 200, 0, 3_600_000),
    failureRate: fraction(env, 'FLEET_FAILURE_RATE', 0),
    latencyMs: int(env, 'FLEET_LATENCY_MS', 0, 0, 600_000),
    hosts: int(env, 'FLEET_HOSTS', 8, 1, 10_000),
    hostVcpus: int(env, 'FLEET_HOST_VCPUS', 256, 1, 1_000_000),
    hostMemoryMb: int(env, 'FLEET_HOST_MEMORY_MB', 1_048_576, 1, 1_000_000_000),
    hostStorageGb: int(env, 'FLEET_HOST_STORAGE_GB', 100_000, 1, 1_000_000_000),
  });
}
