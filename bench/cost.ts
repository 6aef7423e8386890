import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { BENCH_VM, mapLimit, type ApiClient, type Tenant } from './api-client';
import { round } from './stats';

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
      if (type === 'workflowTaskCompletedEventAttributes') {
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
  return { runs, local_activity_markers: localActivityMarkers, events, billable_actions: billable, by_type: byType };
}

export interface CostResult extends HistoryCount {
  readonly lifecycles: number;
  /** Spawn and destroy updates the workflow refused (billed, never in a history). */
  readonly rejected_updates: number;
  /** Activity heartbeats that reached the Temporal server (billed; the SDK throttles the rest). */
  readonly recorded_heartbeats: number;
  readonly actions_per_lifecycle: number;
  readonly events_per_lifecycle: number;
  /** Local activities (markers) per admission: 0 by the admission protocol (docs/admission-protocol.md). */
  readonly local_activities_per_admission: number;
}

async function waitForStatus(ownerUrl: string, vmIds: readonly string[], status: string, timeoutMs: number): Promise<void> {
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

/**
 * Runs `lifecycles` spawn → running → destroy → destroyed lifecycles in a fresh tenant, then reads
 * every run of its workflow. The tenant's workflow start is included and spread over the lifecycles.
 */
/** A counter of the Temporal server's request metrics, summed over its label sets. */
async function serverRequests(metricsUrl: string, operation: string): Promise<number> {
  const text = await (await fetch(metricsUrl, { signal: AbortSignal.timeout(10_000) })).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('service_requests{') && line.includes(`operation="${operation}"`) && line.includes('service_name="frontend"')) sum += Number(line.split(' ').pop());
  }
  return sum;
}

export async function measureCost(options: {
  api: ApiClient;
  temporal: Client;
  tenant: Tenant;
  lifecycles: number;
  concurrency: number;
  ownerUrl: string;
  temporalMetricsUrl: string;
}): Promise<CostResult> {
  const { api, tenant } = options;
  // The whole server's heartbeats: nothing else heartbeats while this phase runs.
  const heartbeatsBefore = await serverRequests(options.temporalMetricsUrl, 'RecordActivityTaskHeartbeat');
  let refused = 0;
  const answers = await mapLimit(Array.from({ length: options.lifecycles }, (_, i) => i), options.concurrency, async () => {
    const answer = await api.request('POST', '/v1/vms', tenant.token, BENCH_VM);
    // A quota refusal is the workflow's validator rejecting the update: billed, never in the history.
    if (answer.status === 429 && answer.body.code === 'quota_exceeded') return void refused++;
    if (answer.status !== 202) throw new Error(`spawn answered ${answer.status} ${JSON.stringify(answer.body)}`);
    return String(answer.body.vm_id);
  });
  const vmIds = answers.filter((id): id is string => id !== undefined);
  await waitForStatus(options.ownerUrl, vmIds, 'running', 60_000);
  await mapLimit(vmIds, options.concurrency, async (vmId) => {
    const answer = await api.request('DELETE', `/v1/vms/${vmId}`, tenant.token);
    if (answer.status !== 202) throw new Error(`destroy answered ${answer.status} ${JSON.stringify(answer.body)}`);
  });
  await waitForStatus(options.ownerUrl, vmIds, 'destroyed', 60_000);
  // Let the workflow record the destroy activities' completions before reading its history.
  await sleep(1_000);
  const counted = await countWorkflowHistory(options.temporal, tenantWorkflowId(tenant.tenantId));
  const recordedHeartbeats = (await serverRequests(options.temporalMetricsUrl, 'RecordActivityTaskHeartbeat')) - heartbeatsBefore;
  const rejectedUpdates = refused;
  const billable = counted.billable_actions + rejectedUpdates + recordedHeartbeats;
  return {
    ...counted,
    billable_actions: billable,
    rejected_updates: rejectedUpdates,
    recorded_heartbeats: recordedHeartbeats,
    lifecycles: vmIds.length,
    actions_per_lifecycle: round(billable / vmIds.length),
    events_per_lifecycle: round(counted.events / vmIds.length),
    local_activities_per_admission: round(counted.local_activity_markers / vmIds.length),
  };
}

export interface HistorySizes {
  readonly tenant_runs: number;
  readonly continued_as_new_runs: number;
  readonly max_history_events: number;
}

/** The longest history among all tenant workflow runs of the run (describe gives the exact length). */
export async function measureHistorySizes(client: Client): Promise<HistorySizes> {
  let runs = 0;
  let continued = 0;
  let max = 0;
  for await (const execution of client.workflow.list({ query: 'WorkflowType = "tenantWorkflow"' })) {
    runs++;
    if (execution.status.name === 'CONTINUED_AS_NEW') continued++;
    const described = await client.workflow.getHandle(execution.workflowId, execution.runId).describe();
    max = Math.max(max, described.historyLength);
  }
  return { tenant_runs: runs, continued_as_new_runs: continued, max_history_events: max };
}
