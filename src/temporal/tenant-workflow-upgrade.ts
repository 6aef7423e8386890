import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { continueAsNewSignal, CURRENT_CODE_PATCH, CURRENT_STATE_VERSION } from '../shared/tenant-workflow.versions';
import { withCallDeadline } from './call-deadline';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** The tenant workflow runs still open on a task queue, as the visibility store lists them. */
const runningTenantWorkflows = (taskQueue: string) =>
  `WorkflowType = 'tenantWorkflow' AND ExecutionStatus = 'Running' AND TaskQueue = '${taskQueue.replace(/'/g, "''")}'`;
/** Enough events to hold the start and the first workflow task's patch markers. */
const FIRST_EVENTS = 50;
const CALL_TIMEOUT_MS = 10_000;

/** What a run of the tenant workflow needs to replay: the code it runs and the state it was handed. */
export interface TenantRunVersion {
  workflowId: string;
  runId: string;
  /** The patch markers of its first workflow task: the code version it runs. Null: no task completed yet. */
  patches: string[] | null;
  /** The state_version of the state it was handed by continue-as-new (1: a version-1 snapshot); null: none (rebuilt from Postgres). */
  carriedStateVersion: number | null;
}

/** Whether a run still needs frozen code to replay: older workflow code, or a state only older code carries. */
export function needsUpgrade(run: TenantRunVersion): boolean {
  // A state only older code carries needs the conversions kept for it, whether or not the run's first task ran yet.
  if (run.carriedStateVersion !== null && run.carriedStateVersion < CURRENT_STATE_VERSION) return true;
  if (run.patches === null) return false; // its first task will run the current code
  return !run.patches.includes(CURRENT_CODE_PATCH);
}

/** Reads a run's version from the first events of its history (the start's input, the patch markers). */
export function runVersionFrom(workflowId: string, runId: string, events: readonly HistoryEvent[]): TenantRunVersion {
  let carriedStateVersion: number | null = null;
  const patches: string[] = [];
  let taskCompleted = false;
  for (const event of events) {
    const started = event.workflowExecutionStartedEventAttributes;
    if (started?.input?.payloads?.[0]) {
      const input = defaultPayloadConverter.fromPayload<{ carried?: { state_version?: number } }>(started.input.payloads[0]);
      carriedStateVersion = input.carried ? (input.carried.state_version ?? 1) : null;
    }
    if (event.workflowTaskCompletedEventAttributes) taskCompleted = true;
    const marker = event.markerRecordedEventAttributes;
    const patch = marker?.markerName === 'core_patch' ? marker.details?.['patch-data']?.payloads?.[0] : undefined;
    if (patch) patches.push(defaultPayloadConverter.fromPayload<{ id: string }>(patch).id);
  }
  return { workflowId, runId, patches: taskCompleted ? patches : null, carriedStateVersion };
}

/**
 * Every open tenant workflow run of the task queue, with its version: the workflow ids the
 * visibility store lists, and `known` ones (those the procedure just moved: the store indexes their
 * new runs a little later), each read at its current run.
 */
export async function listTenantRuns(client: Client, taskQueue: string, known: Iterable<string> = []): Promise<TenantRunVersion[]> {
  const workflowIds = new Set(known);
  for await (const execution of client.workflow.list({ query: runningTenantWorkflows(taskQueue) })) workflowIds.add(execution.workflowId);
  const runs: TenantRunVersion[] = [];
  for (const workflowId of workflowIds) {
    const current = await withCallDeadline(client, 'describe', CALL_TIMEOUT_MS, () => client.workflow.getHandle(workflowId).describe());
    if (current.status.name !== 'RUNNING') continue;
    const { history } = await withCallDeadline(client, 'read history', CALL_TIMEOUT_MS, () =>
      client.workflowService.getWorkflowExecutionHistory({
        namespace: client.options.namespace,
        execution: { workflowId, runId: current.runId },
        maximumPageSize: FIRST_EVENTS,
      }),
    );
    runs.push(runVersionFrom(workflowId, current.runId, history?.events ?? []));
  }
  return runs;
}

/** Whether the run has ended (continued as new, completed or terminated): its workflow id's current run is another, or none runs. */
async function runEnded(client: Client, run: TenantRunVersion): Promise<boolean> {
  const latest = await withCallDeadline(client, 'describe', CALL_TIMEOUT_MS, () => client.workflow.getHandle(run.workflowId).describe());
  return latest.runId !== run.runId || latest.status.name !== 'RUNNING';
}

export interface UpgradeReport {
  /** The runs found on old code, each round (round 1 first). */
  rounds: TenantRunVersion[][];
  /** Runs still on old code when the command stopped (dry run, or not moved within the wait). */
  remaining: TenantRunVersion[];
}

/**
 * The upgrade procedure (docs/upgrades.md): lists the open tenant workflow runs of `taskQueue` that still need
 * frozen code, signals each to continue as new, waits until each has, and lists again: a run of the
 * version-1 code takes two rounds (its first continue-as-new hands the current code a version-1
 * state). Stops when none is left, after `maxRounds`, or at once with `dryRun`.
 */
export async function upgradeTenantRuns(
  client: Client,
  taskQueue: string,
  options: { dryRun?: boolean; maxRounds?: number; waitMs?: number; onRound?: (round: number, runs: TenantRunVersion[]) => void } = {},
): Promise<UpgradeReport> {
  const rounds: TenantRunVersion[][] = [];
  let moved: string[] = [];
  for (let round = 1; ; round++) {
    const old = (await listTenantRuns(client, taskQueue, moved)).filter(needsUpgrade);
    rounds.push(old);
    options.onRound?.(round, old);
    if (old.length === 0 || options.dryRun || round > (options.maxRounds ?? 3)) return { rounds, remaining: old };
    for (const run of old) {
      await withCallDeadline(client, 'signal', CALL_TIMEOUT_MS, () => client.workflow.getHandle(run.workflowId, run.runId).signal(continueAsNewSignal));
    }
    moved = old.map((run) => run.workflowId);
    const waitUntil = Date.now() + (options.waitMs ?? 60_000);
    let moving = old;
    while (moving.length > 0 && Date.now() < waitUntil) {
      const ended = await Promise.all(moving.map((run) => runEnded(client, run)));
      moving = moving.filter((_, i) => !ended[i]);
      if (moving.length > 0) await sleep(500);
    }
  }
}
