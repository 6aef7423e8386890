import type { Client } from '@temporalio/client';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import type { ApiClient, Tenant } from './api-client';
import { BENCH_VM } from './api-client';
import { residentMb, type PidSource } from './process-cpu';
import { summarize, type LatencySummary } from './stats';

/** One window of a steady run: what the spawns and destroys sent in it got. */
export interface SteadyWindow {
  readonly from_s: number;
  readonly spawn: LatencySummary;
  readonly destroy: LatencySummary;
  readonly status_counts: Readonly<Record<string, number>>;
  readonly worker_rss_mb: number;
}

export interface SteadyRun {
  readonly tenants: number;
  readonly spawns_per_s: number;
  readonly lifetime_s: number;
  readonly duration_s: number;
  readonly windows: readonly SteadyWindow[];
  /** Workflow runs per tenant at the end (1 + its continue-as-news), lowest and highest. */
  readonly runs_per_tenant: { readonly min: number; readonly max: number };
  /** Spawns and destroys sent later than planned by more than a second: the run did not keep its rate. */
  readonly late_sends: number;
}

const WINDOW_S = 30;

/**
 * Minutes of steady load: spawns at a fixed rate over a few tenants (open loop: sent on schedule,
 * whatever the answers take), each VM destroyed `lifetimeS` after its 202, so the tenants' workflows
 * run for minutes at a steady population and continue as new several times. Reported per 30 s
 * window, so a drift (latency creeping up, memory growing) or the cost of a continue-as-new shows.
 */
export async function measureSteadyLoad(options: {
  api: ApiClient;
  temporal: Client;
  tenants: readonly Tenant[];
  spawnsPerS: number;
  lifetimeS: number;
  durationS: number;
  worker: PidSource;
}): Promise<SteadyRun> {
  const { api, tenants, spawnsPerS, lifetimeS, durationS } = options;
  const started = performance.now();
  const windows = Array.from({ length: Math.ceil(durationS / WINDOW_S) }, () => ({
    spawn: [] as number[],
    destroy: [] as number[],
    status: {} as Record<string, number>,
    rss: 0,
  }));
  const windowAt = (ms: number) => windows[Math.min(windows.length - 1, Math.floor(ms / 1000 / WINDOW_S))]!;
  let lateSends = 0;
  const inFlight = new Set<Promise<void>>();
  const track = (work: Promise<void>) => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  };
  const timed = async (kind: 'spawn' | 'destroy', call: () => Promise<{ status: number; body: Record<string, unknown> }>) => {
    const sentAt = performance.now() - started;
    const answer = await call();
    const window = windowAt(sentAt);
    window[kind].push(performance.now() - started - sentAt);
    const key = `${kind} ${answer.status}`;
    window.status[key] = (window.status[key] ?? 0) + 1;
    return answer;
  };
  const lifecycle = async (tenant: Tenant) => {
    const spawned = await timed('spawn', () => api.request('POST', '/v1/vms', tenant.token, BENCH_VM));
    if (spawned.status !== 202) return;
    await new Promise((resolve) => setTimeout(resolve, lifetimeS * 1000));
    await timed('destroy', () => api.request('DELETE', `/v1/vms/${String(spawned.body.vm_id)}`, tenant.token));
  };
  const rssTimer = setInterval(async () => {
    windowAt(performance.now() - started).rss = residentMb(await options.worker());
  }, 5_000);
  try {
    const total = Math.round(durationS * spawnsPerS);
    for (let i = 0; i < total; i++) {
      const due = (i / spawnsPerS) * 1000;
      const wait = due - (performance.now() - started);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      else if (wait < -1000) lateSends++;
      track(lifecycle(tenants[i % tenants.length]!));
    }
    while (inFlight.size > 0) await Promise.all([...inFlight]);
  } finally {
    clearInterval(rssTimer);
  }
  const runs = await Promise.all(tenants.map((tenant) => runsOf(options.temporal, tenantWorkflowId(tenant.tenantId))));
  return {
    tenants: tenants.length,
    spawns_per_s: spawnsPerS,
    lifetime_s: lifetimeS,
    duration_s: durationS,
    windows: windows.map((w, i) => ({
      from_s: i * WINDOW_S,
      spawn: summarize(w.spawn),
      destroy: summarize(w.destroy),
      status_counts: w.status,
      worker_rss_mb: w.rss,
    })),
    runs_per_tenant: { min: Math.min(...runs), max: Math.max(...runs) },
    late_sends: lateSends,
  };
}

/** How many runs the workflow id has had: the current one and every one it continued as new from. */
async function runsOf(temporal: Client, workflowId: string): Promise<number> {
  let runs = 0;
  for await (const _ of temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs++;
  return runs;
}
