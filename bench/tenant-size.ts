import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import pg from 'pg';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { BENCH_VM, type ApiClient, type Tenant } from './api-client';
import { summarize, type LatencySummary } from './stats';
import { largestPayload } from '../src/temporal/largest-payload';

const EventType = proto.api.enums.v1.EventType;

export interface TenantSizeRun {
  readonly vms_held: number;
  /** The first spawn after the workflow was lost: a rebuild from Postgres, then the admission. */
  readonly rebuild_spawn_ms: number;
  readonly spawn: LatencySummary;
  /** Workflow task scheduled → completed, over the run's history. */
  readonly workflow_task: LatencySummary;
  readonly largest_payload_bytes: number;
}

/**
 * Spawn latency and workflow-task latency for a tenant holding `held` VMs, seeded straight into
 * Postgres (as if spawned long ago): its workflow is lost (terminated) and rebuilt by the next
 * spawn, then `spawns` spawns run one at a time. Compared at 10 and 100,000 VMs, the figures show
 * whether a tenant's size reaches its workflow (it should not: the workflow keeps totals only).
 */
export async function measureTenantSize(options: {
  api: ApiClient;
  temporal: Client;
  ownerUrl: string;
  tenant: Tenant;
  held: number;
  spawns: number;
}): Promise<TenantSizeRun> {
  const { api, temporal, tenant } = options;
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  try {
    await client.query(
      `insert into vms (vm_id, tenant_id, name, vcpus, memory_mb, storage_gb, image, status, created_at, updated_at)
       select gen_random_uuid()::text, $1, null, 1, 512, 1, 'debian-12', 'running', now() - interval '1 day', now() - interval '1 day'
       from generate_series(1, $2::int)`,
      [tenant.tenantId, options.held],
    );
    await client.query('analyze vms');
  } finally {
    await client.end();
  }
  const handle = () => temporal.workflow.getHandle(tenantWorkflowId(tenant.tenantId));
  for (
    let i = 0;
    i < 100 &&
    (
      await handle()
        .describe()
        .catch(() => null)
    )?.status.name !== 'RUNNING';
    i++
  )
    await new Promise((r) => setTimeout(r, 100));
  await handle().terminate('bench: lose the workflow, so the next spawn rebuilds it');
  const spawnOnce = async () => {
    const started = performance.now();
    const answer = await api.request('POST', '/v1/vms', tenant.token, BENCH_VM);
    if (answer.status !== 202) throw new Error(`spawn for ${tenant.tenantId}: ${answer.status} ${JSON.stringify(answer.body)}`);
    return performance.now() - started;
  };
  const rebuildMs = await spawnOnce();
  const samples: number[] = [];
  for (let i = 0; i < options.spawns; i++) samples.push(await spawnOnce());

  const history = await handle().fetchHistory();
  const scheduled = new Map<number, number>();
  const taskMs: number[] = [];
  let largest = 0;
  for (const event of history.events ?? []) {
    const at = Number(event.eventTime?.seconds ?? 0) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) scheduled.set(Number(event.eventId), at);
    if (event.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
      const from = scheduled.get(Number(event.workflowTaskCompletedEventAttributes?.scheduledEventId));
      if (from !== undefined) taskMs.push(at - from);
    }
    largest = Math.max(largest, largestPayload(event));
  }
  return {
    vms_held: options.held + options.spawns + 1,
    rebuild_spawn_ms: Math.round(rebuildMs * 100) / 100,
    spawn: summarize(samples),
    workflow_task: summarize(taskMs),
    largest_payload_bytes: largest,
  };
}
