import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { generateToken } from '../src/auth/token-format';
import { migrateToLatest } from '../src/db/migrate';
import { SERVICE_ROLE } from '../src/db/migrations/2026_11_23_0001_tenants_tokens_ledger';
import { getFreePort } from '../src/devstack/free-port';
import { adminQuery, withDatabase } from '../src/devstack/postgres-admin';
import { checkServices } from '../src/devstack/service-checks';
import { ensureTemporalBinary } from '../src/devstack/temporal-binary';
import { stackEnv } from '../src/devstack/service-env';
import { ServiceProcess, startServices, stopServices } from '../src/devstack/service-process';
import { startTemporalDevServer, type TemporalDevServer } from '../src/devstack/temporal-dev-server';

/**
 * The whole system for one benchmark run, on free ports: a headless in-memory Temporal dev server,
 * a fresh database vm_tenant_bench_<ts>, and the real fleet simulator, worker and API entry points
 * as child processes (so the API and worker pay their own event loops, as in production).
 */
export interface BenchStack {
  readonly apiUrl: string;
  readonly fleetUrl: string;
  readonly temporalAddress: string;
  readonly namespace: string;
  readonly taskQueue: string;
  readonly natsUrl: string;
  readonly subjectPrefix: string;
  readonly adminToken: string;
  readonly databaseName: string;
  /** Owner login on the bench database (setup SQL, checks). */
  readonly ownerUrl: string;
  /** The Temporal server's Prometheus endpoint. */
  readonly temporalMetricsUrl: string;
  /** Process ids of the stack's parts, for CPU readings (bench/process-cpu.ts). */
  readonly pids: { readonly api?: number; readonly worker?: number; readonly fleet?: number; readonly temporal?: number };
  stop(): Promise<void>;
}

const DEFAULT_PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/** `nodeArgs`: Node options for the API and the worker only (e.g. --cpu-prof, not allowed in NODE_OPTIONS). */
export async function startBenchStack(env: { pgAdminUrl?: string; natsUrl?: string; nodeArgs?: readonly string[] } = {}): Promise<BenchStack> {
  const adminUrl = withDatabase(env.pgAdminUrl || DEFAULT_PG_ADMIN_URL, 'postgres');
  const natsUrl = env.natsUrl || DEFAULT_NATS_URL;
  const [temporalBin] = await Promise.all([ensureTemporalBinary(), checkServices({ postgresUrl: adminUrl, natsUrl })]);

  const stamp = Date.now();
  const suffix = randomBytes(3).toString('hex');
  const databaseName = `vm_tenant_bench_${stamp}_${suffix}`;
  const ownerUrl = withDatabase(adminUrl, databaseName);
  const stream = `BENCH_${stamp}_${suffix}`.toUpperCase();
  const subjectPrefix = stream.toLowerCase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-bench-'));
  const adminToken = generateToken();
  const taskQueue = `vm-tenant-bench-${suffix}`;

  let services: ServiceProcess[] = [];
  let temporal: TemporalDevServer | undefined;
  const stop = async () => {
    await stopServices(services);
    await temporal?.stop();
    await adminQuery(adminUrl, `drop database if exists "${databaseName}" with (force)`).catch((error: unknown) =>
      process.stderr.write(`could not drop ${databaseName}: ${String(error)}\n`),
    );
    const nc = await connect({ servers: natsUrl }).catch(() => null);
    if (nc) {
      await (await nc.jetstreamManager()).streams.delete(stream).catch(() => undefined);
      await nc.close();
    }
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const temporalOutput: string[] = [];
    const metricsPort = await getFreePort();
    [temporal] = await Promise.all([
      startTemporalDevServer({ temporalBin, headless: true, metricsPort, onLine: (line) => void temporalOutput.push(line) }),
      migrateToLatest(ownerUrl),
    ]);
    const [apiPort, fleetPort] = [await getFreePort(), await getFreePort()];
    const childEnv: NodeJS.ProcessEnv = {
      ...stackEnv(
        {
          databaseUrl: withDatabase(adminUrl, databaseName, SERVICE_ROLE),
          migrationDatabaseUrl: ownerUrl,
          natsUrl,
          natsStream: stream,
          natsSubjectPrefix: subjectPrefix,
          temporalAddress: temporal.address,
          temporalNamespace: temporal.namespace,
          taskQueue,
          fleetPort,
          adminToken,
          dataDir,
          logLevel: 'warn',
        },
        process.env,
      ),
      PORT: String(apiPort),
      FLEET_STATE_FILE: path.join(dataDir, 'fleet-state.json'),
      FLEET_BOOT_MS: '0',
      // The simulator rewrites its whole state file (with fsync) on every change by default: ~80 ms
      // a change at 5,000 VMs on the 2-core machine, which would make it, not vm-tenant, what this
      // measures. A real fleet controller does not; coalesce its writes.
      FLEET_STATE_WRITE_DELAY_MS: '200',
      // Room for every VM the run spawns: capacity must never be what refuses a spawn here.
      FLEET_HOSTS: '64',
      FLEET_HOST_VCPUS: '100000',
      FLEET_HOST_MEMORY_MB: '100000000',
      FLEET_HOST_STORAGE_GB: '100000000',
    };
    const quiet = { env: () => childEnv, onLine: () => undefined, keepLines: 200, readyTimeoutMs: 90_000 };
    const [fleet, worker, api] = (services = [
      new ServiceProcess({ kind: 'fleet', ...quiet }),
      new ServiceProcess({ kind: 'worker', ...quiet, nodeArgs: env.nodeArgs }),
      new ServiceProcess({ kind: 'api', ...quiet, nodeArgs: env.nodeArgs }),
    ]);
    await startServices(services);
    const fleetUrl = fleet!.url;
    const apiUrl = api!.url;

    return {
      apiUrl,
      fleetUrl,
      temporalAddress: temporal.address,
      namespace: temporal.namespace,
      taskQueue,
      natsUrl,
      subjectPrefix,
      adminToken,
      databaseName,
      ownerUrl,
      temporalMetricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
      pids: { api: api!.process?.pid, worker: worker!.process?.pid, fleet: fleet!.process?.pid, temporal: temporal.process.pid },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
