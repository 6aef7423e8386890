import { connect, StringCodec } from 'nats';
import pg from 'pg';
import { BENCH_VM, mapLimit, type ApiClient, type Tenant } from './api-client';
import { round, summarize, type LatencySummary } from './stats';

export interface EndToEndResult {
  readonly spawns: number;
  readonly concurrency: number;
  readonly reached_running: number;
  /** 202 received → the VM_RUNNING event received from NATS (what an event consumer sees). */
  readonly to_running_event: LatencySummary;
  /** 202 received → the row turned `running` in Postgres (what GET /v1/vms/:id shows from then on). */
  readonly to_running_row: LatencySummary;
  /** Spawns that reached running per second, first request sent to last VM_RUNNING event. */
  readonly spawns_to_running_per_s: number;
}

/**
 * Spawns `count` VMs over `tenants` (in turn, `concurrency` requests in flight) with the fleet's boot
 * time at zero, and times each from its 202 to `running`. Clocks: this process's Date.now() and the
 * worker's (same machine), both at millisecond precision.
 */
export async function measureEndToEnd(options: {
  api: ApiClient;
  tenants: readonly Tenant[];
  count: number;
  concurrency: number;
  natsUrl: string;
  subjectPrefix: string;
  ownerUrl: string;
  timeoutMs: number;
}): Promise<EndToEndResult> {
  const nc = await connect({ servers: options.natsUrl, name: 'vm-tenant-bench' });
  const accepted = new Map<string, number>();
  const runningAt = new Map<string, number>();
  const codec = StringCodec();
  let allRunning: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allRunning = resolve));
  const subscription = nc.subscribe(`${options.subjectPrefix}.vm.running.*`, {
    callback: (_error, message) => {
      const at = Date.now();
      const vmId = (JSON.parse(codec.decode(message.data)) as { vm_id?: string }).vm_id;
      if (vmId && !runningAt.has(vmId)) runningAt.set(vmId, at);
      if (runningAt.size >= options.count) allRunning();
    },
  });
  await nc.flush();
  const started = Date.now();
  try {
    await mapLimit(
      Array.from({ length: options.count }, (_, i) => i),
      options.concurrency,
      async (i) => {
        const tenant = options.tenants[i % options.tenants.length]!;
        const answer = await options.api.request('POST', '/v1/vms', tenant.token, BENCH_VM);
        if (answer.status === 202) accepted.set(String(answer.body.vm_id), Date.now());
      },
    );
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, options.timeoutMs).unref());
    await Promise.race([done, timeout]);
  } finally {
    subscription.unsubscribe();
    await nc.close();
  }

  const eventLatencies: number[] = [];
  let lastRunning = started;
  for (const [vmId, at202] of accepted) {
    const at = runningAt.get(vmId);
    if (at === undefined) continue;
    eventLatencies.push(at - at202);
    lastRunning = Math.max(lastRunning, at);
  }
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  const rowLatencies: number[] = [];
  try {
    const { rows } = await client.query<{ vm_id: string; updated_at: Date }>("select vm_id, updated_at from vms where vm_id = any($1) and status = 'running'", [
      [...accepted.keys()],
    ]);
    for (const row of rows) rowLatencies.push(row.updated_at.getTime() - accepted.get(row.vm_id)!);
  } finally {
    await client.end();
  }
  return {
    spawns: options.count,
    concurrency: options.concurrency,
    reached_running: eventLatencies.length,
    to_running_event: summarize(eventLatencies),
    to_running_row: summarize(rowLatencies),
    spawns_to_running_per_s: round(eventLatencies.length / ((lastRunning - started) / 1000), 1),
  };
}
