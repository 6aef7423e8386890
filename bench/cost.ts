import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { BENCH_VM, mapLimit, type ApiClient, type Tenant } from './api-client';
import { marginal, round } from './stats';

/**
 * History events Temporal Cloud bills as one action each (https://docs.temporal.io/cloud/actions),
 * keyed by the attributes field that names the event's type. Markers (local activities, side effects,
 * patches) are billed once per workflow task however many it records, local-activity retries and
 * activity retries from their attempt counts. Not in a history, counted apart by measureCost: rejected
 * updates and activity heartbeats that reached the server. Queries are not counted (none here).
 */
const BILLABLE = new Set([
  'workflowExecutionStartedEventAttributes', // every run: the first start and each continue-as-new
  'workflowExecutionUpdateAcceptedEventAttributes',
  'activityTaskScheduledEventAttributes',
  'timerStartedEventAttributes',
  'workflowExecutionSignaledEventAttributes',
  'signalExternalWorkflowExecutionInitiatedEventAttributes',
  'requestCancelExternalWorkflowExecutionInitiatedEventAttributes',
  'startChildWorkflowExecutionInitiatedEventAttributes',
  'upsertWorkflowSearchAttributesEventAttributes',
  'workflowPropertiesModifiedEventAttributes',
]);

export interface HistoryCount {
  readonly runs: number;
  /** Local-activity markers (`core_local_activity`): the admission protocol keeps none on its path. */
  readonly local_activity_markers: number;
  readonly events: number;
  readonly billable_actions: number;
  readonly by_type: Readonly<Record<string, number>>;
  /** Activities scheduled, by activity type. */
  readonly by_activity: Readonly<Record<string, number>>;
  /** Workflow tasks completed. */
  readonly workflow_tasks: number;
}

function eventTypeOf(event: object): string {
  for (const [key, value] of Object.entries(event)) {
    if (key.endsWith('EventAttributes') && value !== null && value !== undefined) return key;
  }
  return 'unknown';
}

/** Every run of one workflow id (visibility lists continued-as-new runs too), counted event by event. */
export async function countWorkflowHistory(client: Client, workflowId: string): Promise<HistoryCount> {
  const byType: Record<string, number> = {};
  let runs = 0;
  let events = 0;
  let billable = 0;
  let localActivityMarkers = 0;
  let workflowTasks = 0;
  const byActivity: Record<string, number> = {};
  for await (const execution of client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
    runs++;
    const history = await client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
    // Markers follow the WorkflowTaskCompleted of the task that recorded them: one action per task.
    let taskHasMarker = false;
    for (const event of history.events ?? []) {
      events++;
      const type = eventTypeOf(event);
      const name = type.replace(/EventAttributes$/, '');
      byType[name] = (byType[name] ?? 0) + 1;
      if (BILLABLE.has(type)) billable++;
      const activity = event.activityTaskScheduledEventAttributes?.activityType?.name;
      if (activity) byActivity[activity] = (byActivity[activity] ?? 0) + 1;
      if (type === 'workflowTaskCompletedEventAttributes') {
        workflowTasks++;
        taskHasMarker = false;
        billable += Number(event.workflowTaskCompletedEventAttributes?.meteringMetadata?.nonfirstLocalActivityExecutionAttempts ?? 0);
      }
      if (event.markerRecordedEventAttributes?.markerName === 'core_local_activity') localActivityMarkers++;
      if (type === 'markerRecordedEventAttributes' && !taskHasMarker) {
        taskHasMarker = true;
        billable++;
      }
      const attempt = event.activityTaskStartedEventAttributes?.attempt ?? 1;
      if (attempt > 1) billable += attempt - 1; // each retry is one more action
    }
  }
  return {
    runs,
    local_activity_markers: localActivityMarkers,
    events,
    billable_actions: billable,
    by_type: byType,
    by_activity: byActivity,
    workflow_tasks: workflowTasks,
  };
}

export async function waitForStatus(ownerUrl: string, vmIds: readonly string[], status: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: string }>('select count(*) as n from vms where vm_id = any($1) and status = $2', [vmIds, status]);
      if (Number(rows[0]!.n) === vmIds.length) return;
      if (Date.now() > deadline) throw new Error(`only ${rows[0]!.n} of ${vmIds.length} VMs reached ${status}`);
      await sleep(100);
    }
  } finally {
    await client.end();
  }
}

/** What a rebuild runs (tenant-run.ts): reported apart from the lifecycle's own activities. */
const REBUILD_ACTIVITIES = new Set(['loadTenantForRebuild', 'readAdmissionEpoch', 'readVmStatuses']);

export interface MarginalCost {
  readonly lifecycles: number;
  readonly concurrency: number;
  /** Billable actions per spawn + destroy, the workflow's start, continue-as-new and rebuild left out. */
  readonly actions_per_lifecycle: number;
  /** Workflow starts (first start, continue-as-new) and rebuild activities over the same lifecycles: reported apart. */
  readonly starts: number;
  readonly rebuild_activities: number;
  readonly workflow_tasks_per_lifecycle: number;
  readonly events_per_lifecycle: number;
  readonly markers_per_lifecycle: number;
  readonly by_type_per_lifecycle: Readonly<Record<string, number>>;
  readonly by_activity_per_lifecycle: Readonly<Record<string, number>>;
}

/**
 * Billable actions a spawn + destroy adds, counted from the tenant's histories: the workflow is
 * started and warmed by `warmup` lifecycles first (not counted), then `lifecycles` more run at
 * `concurrency` in flight; the difference, per lifecycle, with starts and rebuild activities apart.
 */
export async function measureMarginalCost(options: {
  api: ApiClient;
  temporal: Client;
  tenant: Tenant;
  lifecycles: number;
  concurrency: number;
  ownerUrl: string;
  warmup?: number;
}): Promise<MarginalCost> {
  const { api, tenant } = options;
  const lifecycles = async (count: number, concurrency: number) => {
    const vmIds = await mapLimit(
      Array.from({ length: count }, (_, i) => i),
      concurrency,
      async () => {
        const answer = await api.request('POST', '/v1/vms', tenant.token, BENCH_VM);
        if (answer.status !== 202) throw new Error(`spawn answered ${answer.status} ${JSON.stringify(answer.body)}`);
        return String(answer.body.vm_id);
      },
    );
    await waitForStatus(options.ownerUrl, vmIds, 'running', 120_000);
    await mapLimit(vmIds, concurrency, async (vmId) => {
      const answer = await api.request('DELETE', `/v1/vms/${vmId}`, tenant.token);
      if (answer.status !== 202) throw new Error(`destroy answered ${answer.status} ${JSON.stringify(answer.body)}`);
    });
    await waitForStatus(options.ownerUrl, vmIds, 'destroyed', 120_000);
    await sleep(1_000); // the destroy activities' completions reach the history
  };
  const workflowId = tenantWorkflowId(tenant.tenantId);
  await lifecycles(options.warmup ?? 2, 1);
  const before = await countWorkflowHistory(options.temporal, workflowId);
  await lifecycles(options.lifecycles, options.concurrency);
  const after = await countWorkflowHistory(options.temporal, workflowId);
  const n = options.lifecycles;
  const byActivity = marginal(before.by_activity, after.by_activity, 1);
  const starts = (after.by_type.workflowExecutionStarted ?? 0) - (before.by_type.workflowExecutionStarted ?? 0);
  const rebuild = Object.entries(byActivity)
    .filter(([name]) => REBUILD_ACTIVITIES.has(name))
    .reduce((sum, [, v]) => sum + v, 0);
  return {
    lifecycles: n,
    concurrency: options.concurrency,
    actions_per_lifecycle: round((after.billable_actions - before.billable_actions - starts - rebuild) / n),
    starts,
    rebuild_activities: rebuild,
    workflow_tasks_per_lifecycle: round((after.workflow_tasks - before.workflow_tasks) / n),
    events_per_lifecycle: round((after.events - before.events) / n),
    markers_per_lifecycle: round(((after.by_type.markerRecorded ?? 0) - (before.by_type.markerRecorded ?? 0)) / n),
    by_type_per_lifecycle: marginal(before.by_type, after.by_type, n),
    by_activity_per_lifecycle: marginal(before.by_activity, after.by_activity, n),
  };
}
