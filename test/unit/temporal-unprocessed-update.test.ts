import { Client, WithStartWorkflowOperation, WorkflowUpdateFailedError, type ConnectionLike } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { Request, Response } from 'express';
import { errorHandler } from '../../src/api/middleware/error-handler';
import type { Logger } from '../../src/logging/logger';
import { spawnVmUpdate, type SpawnVmRequest, type SpawnVmResult } from '../../src/shared/tenant-workflow.messages';
import type { CallDeadline } from '../../src/temporal/call-deadline';
import { retryWhileExhausted } from '../../src/temporal/retry-exhausted';
import { isTemporalUnavailable, isUnprocessedUpdate, TemporalUnavailableError } from '../../src/temporal/temporal-unavailable';
import { createTenantWorkflowClient } from '../../src/temporal/tenant-workflow-client';

const { ExecuteMultiOperationResponse } = temporal.api.workflowservice.v1;
const { UpdateWorkflowExecutionLifecycleStage } = temporal.api.enums.v1;
type MultiOperationRequest = temporal.api.workflowservice.v1.IExecuteMultiOperationRequest;
type Failure = temporal.api.failure.v1.IFailure;

const UNPROCESSED_MESSAGE = "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.";

/** The server's `unprocessedUpdateFailure` (service/history/workflow/update/errors_failures.go). */
const unprocessedUpdateFailure = (type = 'UnprocessedUpdate'): Failure => ({
  message: UNPROCESSED_MESSAGE,
  source: 'Server',
  applicationFailureInfo: { type, nonRetryable: true },
});

type Answer = { failure: Failure } | { result: unknown };

/**
 * A Temporal whose ExecuteMultiOperation answers each update-with-start with the next of `answers`
 * (the last one repeats), encoded and decoded as the wire carries it, behind the real client: what
 * the client then throws is exactly what it throws for the server. Records each request's update id.
 */
function scriptedTemporal(answers: [Answer, ...Answer[]]): { client: Client; updateIds: string[] } {
  const updateIds: string[] = [];
  const executeMultiOperation = async (request: MultiOperationRequest) => {
    const workflowId = request.operations?.[0]?.startWorkflow?.workflowId ?? '';
    const updateId = request.operations?.[1]?.updateWorkflow?.request?.meta?.updateId ?? '';
    const answer = answers[Math.min(updateIds.length, answers.length - 1)] ?? answers[0];
    updateIds.push(updateId);
    const outcome = 'failure' in answer ? { failure: answer.failure } : { success: { payloads: [defaultPayloadConverter.toPayload(answer.result)] } };
    const response = {
      responses: [
        { startWorkflow: { runId: 'run-1', started: false } },
        {
          updateWorkflow: {
            updateRef: { workflowExecution: { workflowId, runId: 'run-1' }, updateId },
            outcome,
            stage: UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
          },
        },
      ],
    };
    return ExecuteMultiOperationResponse.decode(ExecuteMultiOperationResponse.encode(response).finish());
  };
  const connection = {
    workflowService: { executeMultiOperation },
    // The namespace lists TenantId: the first start's wait for it (search-attributes.ts) ends at once.
    operatorService: { listSearchAttributes: async () => ({ customAttributes: { TenantId: 2 } }) },
    plugins: [],
    withDeadline: (_deadline: unknown, fn: () => Promise<unknown>) => fn(),
    withAbortSignal: (_signal: unknown, fn: () => Promise<unknown>) => fn(),
    withMetadata: (_metadata: unknown, fn: () => Promise<unknown>) => fn(),
  } as unknown as ConnectionLike;
  return { client: new Client({ connection }), updateIds };
}

const SPAWN: SpawnVmRequest = {
  vm_id: 'vm-1',
  shape: { vcpus: 1, memory_mb: 512, storage_gb: 1, image: 'debian-12', name: null },
  created_at: '2026-01-01T00:00:00.000Z',
  context: { request_id: 'req-1', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null },
};
const SPAWNED: SpawnVmResult = { vm_id: 'vm-1', status: 'provisioning' };

function deadlineIn(ms: number): CallDeadline {
  const at = Date.now() + ms;
  return { at, remainingMs: () => Math.max(0, at - Date.now()) };
}

/** What the client's update-with-start throws when the server answers the update with `failure`. */
async function updateFailedWith(failure: Failure): Promise<unknown> {
  const { client } = scriptedTemporal([{ failure }]);
  const startWorkflowOperation = new WithStartWorkflowOperation('tenantWorkflow', {
    workflowId: 'tenant-1',
    taskQueue: 'tq',
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  return client.workflow
    .executeUpdateWithStart(spawnVmUpdate, { args: [SPAWN], updateId: 'spawn-vm-1', startWorkflowOperation })
    .catch((error: unknown) => error);
}

/** The status, headers and body the error middleware answers `error` with. */
function answerOf(error: unknown): { status: number; headers: Record<string, unknown>; body: Record<string, unknown> } {
  const answer = { status: 0, headers: {} as Record<string, unknown>, body: {} as Record<string, unknown> };
  const res = {
    headersSent: false,
    locals: {},
    setHeader: (name: string, value: unknown) => (answer.headers[name.toLowerCase()] = value),
    status: (code: number) => ((answer.status = code), res),
    type: () => res,
    json: (body: Record<string, unknown>) => ((answer.body = body), res),
  };
  const log = { warn: () => undefined, error: () => undefined } as unknown as Logger;
  const req = { originalUrl: '/v1/vms', context: { request_id: 'req-1' } } as unknown as Request;
  errorHandler(log)(error, req, res as unknown as Response, () => undefined);
  return answer;
}

describe('an update the server rejected because no worker processed it', () => {
  test('when the server rejects the update as unprocessed, then the client throws WorkflowUpdateFailedError caused by a Server ApplicationFailure of type UnprocessedUpdate (no gRPC status), and it is recognised', async () => {
    const error = await updateFailedWith(unprocessedUpdateFailure());
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(error).toMatchObject({ name: 'WorkflowUpdateFailedError', message: 'Workflow Update failed' });
    expect(error).not.toHaveProperty('code');
    const cause = (error as WorkflowUpdateFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({
      name: 'ApplicationFailure',
      type: 'UnprocessedUpdate',
      nonRetryable: true,
      message: UNPROCESSED_MESSAGE,
      failure: { source: 'Server', applicationFailureInfo: { type: 'UnprocessedUpdate', nonRetryable: true } },
    });
    expect(isUnprocessedUpdate(error)).toBe(true);
    expect(isTemporalUnavailable(error)).toBe(true);
  });

  test('when a 1.28.1–1.28.4 server names the type UnprocessedUpdategit, then it is recognised too', async () => {
    expect(isUnprocessedUpdate(await updateFailedWith(unprocessedUpdateFailure('UnprocessedUpdategit')))).toBe(true);
  });

  test('when only the message matches (another type, a failure a workflow raised, or a bare Error), then it is not an unprocessed update and is thrown at once', async () => {
    const lookalikes: unknown[] = [
      await updateFailedWith({ ...unprocessedUpdateFailure(), applicationFailureInfo: { type: 'QuotaExceeded', nonRetryable: true } }),
      await updateFailedWith({ ...unprocessedUpdateFailure(), source: 'TypeScriptSDK' }),
      new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ type: 'UnprocessedUpdate', message: UNPROCESSED_MESSAGE })),
      new Error(UNPROCESSED_MESSAGE),
    ];
    for (const lookalike of lookalikes) {
      expect(isUnprocessedUpdate(lookalike)).toBe(false);
      let attempts = 0;
      await retryWhileExhausted(async () => {
        attempts++;
        throw lookalike;
      }, deadlineIn(5_000)).catch(() => undefined);
      expect(attempts).toBe(1);
    }
  });

  test('when the server rejects a spawn as unprocessed twice, then it is sent again with the same update id and answers the workflow result', async () => {
    const { client, updateIds } = scriptedTemporal([{ failure: unprocessedUpdateFailure() }, { failure: unprocessedUpdateFailure() }, { result: SPAWNED }]);
    const tenants = createTenantWorkflowClient({ client, taskQueue: 'tq', callTimeoutMs: 5_000 });
    await expect(tenants.spawn('tenant-1', SPAWN)).resolves.toEqual(SPAWNED);
    expect(updateIds).toHaveLength(3);
    expect(new Set(updateIds).size).toBe(1);
    expect(updateIds[0]).toContain(SPAWN.vm_id);
  });

  test('when the server keeps rejecting a spawn as unprocessed, then it is retried until the call deadline, fails as TemporalUnavailableError in time, and is answered 503 dependency_unavailable naming temporal with Retry-After', async () => {
    const { client, updateIds } = scriptedTemporal([{ failure: unprocessedUpdateFailure() }]);
    const tenants = createTenantWorkflowClient({ client, taskQueue: 'tq', callTimeoutMs: 600 });
    const started = Date.now();
    const error = await tenants.spawn('tenant-1', SPAWN).catch((thrown: unknown) => thrown);
    expect(Date.now() - started).toBeLessThanOrEqual(800);
    expect(updateIds.length).toBeGreaterThan(1);
    expect(new Set(updateIds).size).toBe(1);
    // Its cause is the last rejection, unless the deadline's timer won the race against the last attempt.
    expect(error).toBeInstanceOf(TemporalUnavailableError);

    const answer = answerOf(error);
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toMatch(/^\d+$/);
    expect(answer.body).toMatchObject({ status: 503, code: 'dependency_unavailable', dependency: 'temporal' });
  });
});
