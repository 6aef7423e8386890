import { Worker } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { testBundle } from './workflow-bundle';

/**
 * Replays every run of a workflow as a worker that lost its cache would (a restart, another
 * worker): any non-determinism in what the live runs did fails here. Returns the runs replayed.
 */
export async function replayLiveRuns(client: Client, workflowId: string): Promise<number> {
  const histories: Array<{ workflowId: string; history: Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>> }> = [];
  for await (const execution of client.workflow.list({ query: `WorkflowId="${workflowId}"` })) {
    histories.push({ workflowId: `${workflowId}/${execution.runId}`, history: await client.workflow.getHandle(workflowId, execution.runId).fetchHistory() });
  }
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await testBundle() }, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
  }
  if (failures.length) throw new Error(`replay failed:\n${failures.join('\n')}`);
  return histories.length;
}
