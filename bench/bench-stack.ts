import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateToken } from '../src/auth/token-format';
import { SERVICE_ROLE } from '../src/db/migrations/2026_11_23_0001_tenants_tokens_ledger';
import { getFreePort } from '../src/devstack/free-port';
import { createScratchDatabase, withDatabase } from '../src/devstack/postgres-admin';
import { checkServices } from '../src/devstack/service-checks';
import { stackEnv } from '../src/devstack/service-env';
import { startStack } from '../src/devstack/stack';
import { deleteStreams } from '../src/devstack/nats-streams';

/**
 * The whole system for one benchmark run, on free ports: a headless in-memory Temporal dev server,
 * a fresh database vm_tenant_bench_<ms>_<hex>, and the real fleet simulator, worker and API entry
 * points as child processes (so the API and worker pay their own event loops, as in production).
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
  await checkServices({ postgresUrl: adminUrl, natsUrl });
  const suffix = randomBytes(3).toString('hex');
  const stream = `BENCH_${Date.now()}_${suffix}`.toUpperCase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-bench-'));
  const [metricsPort, apiPort, fleetPort, database] = [
    await getFreePort(),
    await getFreePort(),
    await getFreePort(),
    await createScratchDatabase(adminUrl, 'vm_tenant_bench'),
  ];
  const removeData = async () => {
    await database.drop().catch((error: unknown) => process.stderr.write(`could not drop ${database.name}: ${String(error)}\n`));
    await deleteStreams(natsUrl, [stream, `${stream}_CHECKPOINTS`]);
    rmSync(dataDir, { recursive: true, force: true });
  };
  const common = stackEnv(
    {
      databaseUrl: withDatabase(adminUrl, database.name, SERVICE_ROLE),
      migrationDatabaseUrl: database.url,
      natsUrl,
      natsStream: stream,
      natsSubjectPrefix: stream.toLowerCase(),
      taskQueue: `vm-tenant-bench-${suffix}`,
      fleetPort,
      adminToken: generateToken(),
      dataDir,
      logLevel: 'warn',
    },
    process.env,
  );
  const stack = await startStack({
    env: { ...common, PORT: String(apiPort) },
    temporal: { headless: true, metricsPort, onLine: () => undefined },
    services: [
      {
        kind: 'fleet',
        env: {
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
        },
      },
      { kind: 'worker', nodeArgs: env.nodeArgs },
      { kind: 'api', nodeArgs: env.nodeArgs },
    ],
    processes: { onLine: () => undefined, keepLines: 200, readyTimeoutMs: 90_000 },
  }).catch(async (error: unknown) => {
    await removeData();
    throw error;
  });
  const [fleet, worker, api] = ['fleet', 'worker', 'api'].map((name) => stack.service(name));
  return {
    apiUrl: api!.url,
    fleetUrl: fleet!.url,
    temporalAddress: stack.env.TEMPORAL_ADDRESS!,
    namespace: stack.env.TEMPORAL_NAMESPACE!,
    taskQueue: common.TEMPORAL_TASK_QUEUE!,
    natsUrl,
    subjectPrefix: common.NATS_SUBJECT_PREFIX!,
    adminToken: common.ADMIN_TOKEN!,
    databaseName: database.name,
    ownerUrl: database.url,
    temporalMetricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    pids: { api: api!.process?.pid, worker: worker!.process?.pid, fleet: fleet!.process?.pid, temporal: stack.temporal?.process.pid },
    async stop() {
      await stack.stop();
      await removeData();
    },
  };
}
