import { Client, Connection, isGrpcDeadlineError, WithStartWorkflowOperation, WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { google, temporal } from '@temporalio/proto';
import { spawnVmUpdate, type SpawnVmRequest, type SpawnVmResult } from '../../src/shared/tenant-workflow.messages';
import { isTemporalUnavailable, isUnprocessedUpdate, TemporalUnavailableError } from '../../src/temporal/temporal-unavailable';
import { createTenantWorkflowClient } from '../../src/temporal/tenant-workflow-client';
import { testEnv, uniqueName } from '../helpers/test-env';

const { Request: UpdateRequest, Acceptance, Response: UpdateResponse } = temporal.api.update.v1;
const { CommandType } = temporal.api.enums.v1;
type ProtocolMessage = temporal.api.protocol.v1.IMessage;

const POLL_MS = 5_000;
const UPDATE_REQUEST_TYPE = 'type.googleapis.com/temporal.api.update.v1.Request';
const any = (typeName: string, value: Uint8Array): google.protobuf.IAny => ({ type_url: `type.googleapis.com/${typeName}`, value });

/** What the worker does with a workflow task that carries an update: leave it unanswered, or accept it and answer `result`. */
type Handling = 'ignore' | { result: unknown };

/**
 * A worker on its own task queue that speaks the workflow-task protocol by hand, so a test decides
 * what becomes of each update delivered to it. Leaving one unanswered is what a worker paused in the
 * middle of a task (SIGSTOP) ends up doing: the server then completes the task and rejects the
 * update (RejectUnprocessed). `handle(n)` chooses for the n-th delivery (0-based); every delivered
 * update id is recorded.
 */
function handWorker(connection: Connection, namespace: string, taskQueue: string, handle: (delivery: number) => Handling) {
  const delivered: string[] = [];
  const stop = new AbortController();
  const identity = `hand-worker-${taskQueue}`;

  const answer = (request: ProtocolMessage, result: unknown): { messages: ProtocolMessage[]; commands: temporal.api.command.v1.ICommand[] } => {
    const update = UpdateRequest.decode(request.body?.value ?? new Uint8Array());
    const accepted = `${request.id}/accept`;
    const completed = `${request.id}/complete`;
    const acceptance = Acceptance.encode({
      acceptedRequestMessageId: request.id,
      acceptedRequestSequencingEventId: request.eventId,
      acceptedRequest: update,
    }).finish();
    const response = UpdateResponse.encode({ meta: update.meta, outcome: { success: { payloads: [defaultPayloadConverter.toPayload(result)] } } }).finish();
    return {
      messages: [
        { id: accepted, protocolInstanceId: request.protocolInstanceId, body: any('temporal.api.update.v1.Acceptance', acceptance) },
        { id: completed, protocolInstanceId: request.protocolInstanceId, body: any('temporal.api.update.v1.Response', response) },
      ],
      commands: [accepted, completed].map((messageId) => ({
        commandType: CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE,
        protocolMessageCommandAttributes: { messageId },
      })),
    };
  };

  const loop: Promise<void> = (async () => {
    while (!stop.signal.aborted) {
      // A long poll needs a deadline (the server refuses one without); an empty or expired poll polls again.
      const poll = () => connection.workflowService.pollWorkflowTaskQueue({ namespace, identity, taskQueue: { name: taskQueue } });
      const task = await connection
        .withAbortSignal(stop.signal, () => connection.withDeadline(Date.now() + POLL_MS, poll))
        .catch((error: unknown) => {
          if (stop.signal.aborted || isGrpcDeadlineError(error)) return undefined;
          throw error;
        });
      if (!task?.taskToken?.length) continue;
      const requests = (task.messages ?? []).filter((message) => message.body?.type_url === UPDATE_REQUEST_TYPE);
      let completion: ReturnType<typeof answer> = { messages: [], commands: [] };
      for (const request of requests) {
        const handling = handle(delivered.length);
        delivered.push(request.protocolInstanceId ?? '');
        if (handling !== 'ignore') completion = answer(request, handling.result);
      }
      await connection.workflowService.respondWorkflowTaskCompleted({ namespace, identity, taskToken: task.taskToken, ...completion });
    }
  })();
  // Kept for close(); a failure here shows there, not as an unhandled rejection.
  loop.catch(() => undefined);

  return {
    delivered,
    async close() {
      stop.abort();
      await loop;
    },
  };
}

const spawnRequest = (vmId: string): SpawnVmRequest => ({
  vm_id: vmId,
  shape: { vcpus: 1, memory_mb: 512, storage_gb: 1, image: 'debian-12', name: null },
  created_at: new Date().toISOString(),
  context: { request_id: `req-${vmId}`, actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null },
});

/**
 * An update that a worker's completed workflow task left unprocessed is rejected by the server
 * ("Workflow Update is rejected because it wasn't processed by worker"). The API sends it again with
 * the same update id while the call's deadline allows, and answers Temporal unavailable after it,
 * never a 500.
 */
describe('an update the worker did not process, against the dev server', () => {
  const { temporalAddress, temporalNamespace: namespace } = testEnv();
  let connection: Connection;
  let client: Client;
  const workers: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    connection = await Connection.connect({ address: temporalAddress });
    client = new Client({ connection, namespace });
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.close()));
    await connection?.close();
  });

  const startWorker = (handle: (delivery: number) => Handling) => {
    const taskQueue = uniqueName('unprocessed-update');
    const worker = handWorker(connection, namespace, taskQueue, handle);
    workers.push(worker);
    return { taskQueue, delivered: worker.delivered };
  };

  test('when the workflow task that carried the update completes without an answer to it, then the client throws WorkflowUpdateFailedError caused by the Server ApplicationFailure UnprocessedUpdate, recognised as Temporal unavailable', async () => {
    const { taskQueue, delivered } = startWorker(() => 'ignore');
    const startWorkflowOperation = new WithStartWorkflowOperation('tenantWorkflow', {
      workflowId: uniqueName('unprocessed'),
      taskQueue,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    const error = await client.workflow
      .executeUpdateWithStart(spawnVmUpdate, { args: [spawnRequest('vm-shape')], updateId: 'spawn-vm-shape', startWorkflowOperation })
      .catch((thrown: unknown) => thrown);

    expect(delivered).toEqual(['spawn-vm-shape']);
    expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
    expect(error).toMatchObject({ name: 'WorkflowUpdateFailedError', message: 'Workflow Update failed' });
    expect(error).not.toHaveProperty('code');
    const cause = (error as WorkflowUpdateFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect(cause).toMatchObject({
      type: 'UnprocessedUpdate',
      nonRetryable: true,
      message: "Workflow Update is rejected because it wasn't processed by worker. Probably, Workflow Update is not supported by the worker.",
      failure: { source: 'Server', applicationFailureInfo: { type: 'UnprocessedUpdate', nonRetryable: true } },
    });
    expect(isUnprocessedUpdate(error)).toBe(true);
    expect(isTemporalUnavailable(error)).toBe(true);
  });

  test('when the first delivery of a spawn is left unprocessed, then the API sends it again with the same update id and the worker that processes it answers', async () => {
    const result: SpawnVmResult = { vm_id: 'vm-retried', status: 'provisioning' };
    const { taskQueue, delivered } = startWorker((delivery) => (delivery === 0 ? 'ignore' : { result }));
    const tenants = createTenantWorkflowClient({ client, taskQueue, callTimeoutMs: 10_000 });

    await expect(tenants.spawn(uniqueName('tenant'), spawnRequest('vm-retried'))).resolves.toEqual(result);
    expect(delivered).toHaveLength(2);
    expect(new Set(delivered).size).toBe(1);
  });

  test('when every delivery of a spawn is left unprocessed, then it is sent again with the same update id until the deadline and fails as TemporalUnavailableError in time', async () => {
    const callTimeoutMs = 2_000;
    const { taskQueue, delivered } = startWorker(() => 'ignore');
    const tenants = createTenantWorkflowClient({ client, taskQueue, callTimeoutMs });

    const started = Date.now();
    const error = await tenants.spawn(uniqueName('tenant'), spawnRequest('vm-never')).catch((thrown: unknown) => thrown);
    expect(Date.now() - started).toBeLessThan(callTimeoutMs + 1_000);
    expect(error).toBeInstanceOf(TemporalUnavailableError);
    expect(delivered.length).toBeGreaterThan(1);
    expect(new Set(delivered).size).toBe(1);
  });
});
