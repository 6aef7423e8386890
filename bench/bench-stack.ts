import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { connect } from 'nats';
import { generateToken } from '../src/auth/token-format';
import { migrateToLatest } from '../src/db/migrate';
import { SERVICE_ROLE } from '../src/db/migrations/2026_11_23_0001_tenants_tokens_ledger';
import { describeExit, spawnManaged, spawnNodeTs, type ManagedChild } from '../src/devstack/child-process';
import { getFreePort } from '../src/devstack/free-port';
import { adminQuery, withDatabase } from '../src/devstack/postgres-admin';
import { checkServices } from '../src/devstack/service-checks';
import { ensureTemporalBinary, REPO_ROOT } from '../src/devstack/temporal-binary';
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
  /** Process ids of the stack's parts, for CPU readings (bench/process-cpu.ts). */
  /** The Temporal server's Prometheus endpoint. */
  readonly temporalMetricsUrl: string;
  readonly pids: { readonly api?: number; readonly worker?: number; readonly fleet?: number; readonly temporal?: number };
  stop(): Promise<void>;
}

const DEFAULT_PG_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

async function waitFor(what: string, child: ManagedChild, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.hasExited()) throw new Error(`${what} ${describeExit(await child.exited)}:\n${child.recentOutput().join('\n')}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready:\n${child.recentOutput().join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const httpOk = (url: string) => async () => (await fetch(url)).ok;

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

  const children: ManagedChild[] = [];
  let temporal: TemporalDevServer | undefined;
  const stop = async () => {
    // Reverse start order: the API first (no new work), then the worker, the fleet, Temporal.
    for (const child of [...children].reverse()) await child.stop(15_000);
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
      ...process.env,
      PORT: String(apiPort),
      DATABASE_URL: withDatabase(adminUrl, databaseName, SERVICE_ROLE),
      MIGRATION_DATABASE_URL: ownerUrl,
      NATS_URL: natsUrl,
      NATS_STREAM: stream,
      NATS_SUBJECT_PREFIX: subjectPrefix,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: temporal.namespace,
      TEMPORAL_TASK_QUEUE: taskQueue,
      FLEET_URL: `http://127.0.0.1:${fleetPort}`,
      FLEET_PORT: String(fleetPort),
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
      ADMIN_TOKEN: adminToken,
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
    };
    const quiet = { env: childEnv, cwd: REPO_ROOT, onLine: () => undefined, keepLines: 200 };
    const fleet = spawnNodeTs('fleet', path.join(REPO_ROOT, 'src/fleet-simulator/server.ts'), quiet);
    children.push(fleet);
    const fleetUrl = `http://127.0.0.1:${fleetPort}`;
    await waitFor('fleet simulator', fleet, httpOk(`${fleetUrl}/_sim/config`));

    const node = (name: string, file: string) => spawnManaged(name, process.execPath, [...(env.nodeArgs ?? []), '--import', 'tsx', path.join(REPO_ROOT, file)], quiet);
    const worker = node('worker', 'src/workers/worker.ts');
    children.push(worker);
    const connection = await Connection.connect({ address: temporal.address });
    try {
      // Ready once it polls the task queue (it bundles the workflow code first when dist/ has none).
      await waitFor('worker', worker, async () => {
        const described = await connection.workflowService.describeTaskQueue({
          namespace: temporal!.namespace,
          taskQueue: { name: taskQueue },
          taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
        });
        return described.pollers.length > 0;
      });
    } finally {
      await connection.close();
    }

    const api = node('api', 'src/api/server.ts');
    children.push(api);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await waitFor('API', api, httpOk(`${apiUrl}/readyz`));

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
      pids: { api: api.pid, worker: worker.pid, fleet: fleet.pid, temporal: temporal.process.pid },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
