import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { BENCH_VM, mapLimit, type ApiClient, type Tenant } from './api-client';
import { cpuPerOperation, measureCpu, type CpuUse, type PidSource } from './process-cpu';
import { round, summarize, type LatencySummary } from './stats';

/** Polls Postgres until every VM of `vmIds` is `running`; answers how many statements the polling ran. */
export async function waitRunning(client: pg.Client, vmIds: readonly string[], timeoutMs: number, pollMs = 50): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let polls = 1; ; polls++) {
    const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from vms where vm_id = any($1) and status = 'running'`, [vmIds]);
    if (rows[0]!.n === vmIds.length) return polls;
    if (Date.now() > deadline) throw new Error(`only ${rows[0]!.n} of ${vmIds.length} VMs reached running within ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}

async function spawn(api: ApiClient, tenant: Tenant): Promise<{ ms: number; vmId: string | null; status: number }> {
  const started = performance.now();
  const answer = await api.request('POST', '/v1/vms', tenant.token, BENCH_VM);
  return { ms: performance.now() - started, vmId: answer.status === 202 ? String(answer.body.vm_id) : null, status: answer.status };
}

/**
 * Admission on its own: one spawn at a time in one tenant, the next sent only once the previous VM
 * is `running` (no boot in flight, as the floor has none). Latency of the POST alone.
 */
export async function measureSpacedAdmission(options: { api: ApiClient; tenant: Tenant; ownerUrl: string; samples: number }): Promise<LatencySummary> {
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  try {
    const samples: number[] = [];
    for (let i = 0; i < options.samples + 5; i++) {
      const { ms, vmId, status } = await spawn(options.api, options.tenant);
      if (vmId === null) throw new Error(`spaced spawn answered ${status}`);
      if (i >= 5) samples.push(ms); // the first five warm the path
      await waitRunning(client, [vmId], 60_000, 5);
    }
    return summarize(samples);
  } finally {
    await client.end();
  }
}

/** Back to back: one tenant, one request in flight, the next sent at the 202 while the previous VM still boots. */
export async function measureBackToBackAdmission(options: { api: ApiClient; tenant: Tenant; samples: number }): Promise<LatencySummary> {
  const samples: number[] = [];
  for (let i = 0; i < options.samples + 5; i++) {
    const { ms, vmId, status } = await spawn(options.api, options.tenant);
    if (vmId === null) throw new Error(`back-to-back spawn answered ${status}`);
    if (i >= 5) samples.push(ms);
  }
  return summarize(samples);
}

export interface CarriedRun {
  readonly tenants: number;
  readonly concurrency: number;
  readonly spawns: number;
  /** Spawns sent until every one is `running`, per second. */
  readonly spawns_to_running_per_s: number;
  readonly admission: LatencySummary;
  readonly status_counts: Readonly<Record<string, number>>;
  readonly cpu: CpuUse & ReturnType<typeof cpuPerOperation>;
  /** Statements the bench itself ran against the database in the window (its polling): left out of the transactions. */
  readonly bench_statements: number;
}

/**
 * `spawns` spawns over `tenants` (in turn) at `concurrency` in flight, each carried to `running`:
 * the CPU window opens at the first request and closes when the last VM is running, so it holds
 * exactly these spawns (and whatever else the machine's processes did meanwhile).
 */
export async function measureCarriedSpawns(options: {
  api: ApiClient;
  tenants: readonly Tenant[];
  spawns: number;
  concurrency: number;
  ownerUrl: string;
  cpuGroups: Readonly<Record<string, PidSource>>;
}): Promise<CarriedRun> {
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  try {
    const samples: number[] = [];
    const statusCounts: Record<string, number> = {};
    let polls = 0;
    const started = performance.now();
    const { cpu, result: accepted } = await measureCpu(options.cpuGroups, async () => {
      const answers = await mapLimit(
        Array.from({ length: options.spawns }, (_, i) => i),
        options.concurrency,
        async (i) => {
          const answer = await spawn(options.api, options.tenants[i % options.tenants.length]!);
          samples.push(answer.ms);
          statusCounts[answer.status] = (statusCounts[answer.status] ?? 0) + 1;
          return answer.vmId;
        },
      );
      const vmIds = answers.filter((id): id is string => id !== null);
      polls = await waitRunning(client, vmIds, 120_000);
      return vmIds.length;
    });
    const elapsedS = (performance.now() - started) / 1000;
    return {
      tenants: options.tenants.length,
      concurrency: options.concurrency,
      spawns: accepted,
      spawns_to_running_per_s: round(accepted / elapsedS, 1),
      admission: summarize(samples),
      status_counts: statusCounts,
      cpu: { ...cpu, ...cpuPerOperation(cpu, accepted) },
      bench_statements: polls,
    };
  } finally {
    await client.end();
  }
}
