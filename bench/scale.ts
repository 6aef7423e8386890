import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { configureFleet } from '../src/fleet-simulator/sim-client';
import { BENCH_VM, mapLimit, type ApiClient, type Tenant } from './api-client';
import { waitRunning } from './admission';
import { residentMb, type PidSource } from './process-cpu';
import { round, summarize, type LatencySummary } from './stats';

export interface SpawnRound {
  readonly spawns: number;
  readonly elapsed_s: number;
  readonly latency: LatencySummary;
  readonly status_counts: Readonly<Record<string, number>>;
}

async function spawnRound(api: ApiClient, tenants: readonly Tenant[], perTenant: number, concurrency: number): Promise<SpawnRound & { vmIds: string[] }> {
  const samples: number[] = [];
  const statusCounts: Record<string, number> = {};
  const started = performance.now();
  const work = tenants.flatMap((tenant) => Array.from({ length: perTenant }, () => tenant));
  const vmIds = await mapLimit(work, concurrency, async (tenant) => {
    const t0 = performance.now();
    const answer = await api.request('POST', '/v1/vms', tenant.token, BENCH_VM);
    samples.push(performance.now() - t0);
    statusCounts[answer.status] = (statusCounts[answer.status] ?? 0) + 1;
    return answer.status === 202 ? String(answer.body.vm_id) : null;
  });
  return {
    spawns: work.length,
    elapsed_s: round((performance.now() - started) / 1000, 1),
    latency: summarize(samples),
    status_counts: statusCounts,
    vmIds: vmIds.filter((id): id is string => id !== null),
  };
}

export interface RealisticBootRun extends SpawnRound {
  readonly boot_ms: number;
  readonly concurrency: number;
  /** From the first request until every admitted VM is running. */
  readonly to_all_running_s: number;
}

/**
 * Real boots (issue 20): the fleet simulator takes `bootMs` per boot, and `vms` spawns are sent to
 * one tenant at `concurrency` in flight, so hundreds of boots are in flight in its workflow while
 * admissions go on. The simulator goes back to instant boots afterwards.
 */
export async function measureRealisticBoot(options: {
  api: ApiClient;
  fleetUrl: string;
  ownerUrl: string;
  tenant: Tenant;
  vms: number;
  bootMs: number;
  concurrency: number;
}): Promise<RealisticBootRun> {
  await configureFleet(options.fleetUrl, { boot_ms: options.bootMs });
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  try {
    const started = performance.now();
    const round_ = await spawnRound(options.api, [options.tenant], options.vms, options.concurrency);
    await waitRunning(client, round_.vmIds, 300_000, 250);
    const { vmIds: _vmIds, ...rest } = round_;
    return { ...rest, boot_ms: options.bootMs, concurrency: options.concurrency, to_all_running_s: round((performance.now() - started) / 1000, 1) };
  } finally {
    await client.end();
    await configureFleet(options.fleetUrl, { boot_ms: 0 });
  }
}

export interface ManyTenantsRun {
  readonly tenants: number;
  readonly concurrency: number;
  readonly create_tenants_s: number;
  /** The first spawn of each tenant: its workflow starts (update-with-start on no workflow). */
  readonly first: SpawnRound;
  /** The second: its workflow is running (and cached on the worker while the cache holds it). */
  readonly second: SpawnRound;
  readonly p99_first_over_second: number;
  readonly worker_rss_mb: { readonly before: number; readonly after_first: number; readonly after_second: number };
}

/** `count` new tenants, each spawning a first and then a second VM, `concurrency` requests in flight; the worker's memory beside it. */
export async function measureManyTenants(options: {
  api: ApiClient;
  adminToken: string;
  ownerUrl: string;
  count: number;
  concurrency: number;
  worker: PidSource;
}): Promise<ManyTenantsRun> {
  const rss = async () => residentMb(await options.worker());
  const created = performance.now();
  const tenants = await mapLimit(
    Array.from({ length: options.count }, (_, i) => i),
    16,
    (i) => options.api.createTenant(options.adminToken, `many${i}`, 10),
  );
  const createS = round((performance.now() - created) / 1000, 1);
  const before = await rss();
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  try {
    const { vmIds: firstIds, ...first } = await spawnRound(options.api, tenants, 1, options.concurrency);
    await waitRunning(client, firstIds, 300_000, 250);
    const afterFirst = await rss();
    const { vmIds: secondIds, ...second } = await spawnRound(options.api, tenants, 1, options.concurrency);
    await waitRunning(client, secondIds, 300_000, 250);
    const afterSecond = await rss();
    return {
      tenants: options.count,
      concurrency: options.concurrency,
      create_tenants_s: createS,
      first,
      second,
      p99_first_over_second: round(first.latency.p99_ms / second.latency.p99_ms),
      worker_rss_mb: { before, after_first: afterFirst, after_second: afterSecond },
    };
  } finally {
    await client.end();
  }
}
