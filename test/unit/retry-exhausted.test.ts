import { Metadata, status } from '@grpc/grpc-js';
import { ServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { rethrowKnownErrorTypes } from '@temporalio/client/lib/helpers';
import { ApplicationFailure } from '@temporalio/common';
import { google, temporal } from '@temporalio/proto';
import type { CallDeadline } from '../../src/temporal/call-deadline';
import { retryWhileExhausted } from '../../src/temporal/retry-exhausted';
import { isDroppedUpdate, isTemporalUnavailable } from '../../src/temporal/temporal-unavailable';

const { MultiOperationExecutionFailure, WorkflowNotReadyFailure } = temporal.api.errordetails.v1;
const { MultiOperationExecutionAborted } = temporal.api.failure.v1;
const DROPPED_MESSAGE = 'Unable to perform workflow execution update due to unexpected workflow task failure.';

const any = (typeName: string, value: Uint8Array) => ({ type_url: `type.googleapis.com/${typeName}`, value });
const workflowNotReady = () => any('temporal.api.errordetails.v1.WorkflowNotReadyFailure', WorkflowNotReadyFailure.encode({}).finish());

/** An error shaped as grpc-js raises it (code, details, metadata), optionally with status details. */
function grpcError(code: status, message = 'refused', details: google.protobuf.IAny[] = []): Error {
  const metadata = new Metadata();
  if (details.length > 0) metadata.set('grpc-status-details-bin', Buffer.from(google.rpc.Status.encode({ code, message, details }).finish()));
  return Object.assign(new Error(`${code} ${message}`), { code, details: message, metadata });
}

/** What the Temporal client throws for an update-with-start whose update the server dropped: it unpacks the multi-operation failure itself. */
function droppedUpdateWithStart(): unknown {
  const statuses = [
    {
      code: status.ABORTED,
      message: 'Operation was aborted.',
      details: [any('temporal.api.failure.v1.MultiOperationExecutionAborted', MultiOperationExecutionAborted.encode({}).finish())],
    },
    { code: status.FAILED_PRECONDITION, message: DROPPED_MESSAGE, details: [workflowNotReady()] },
  ];
  const multi = any('temporal.api.errordetails.v1.MultiOperationExecutionFailure', MultiOperationExecutionFailure.encode({ statuses }).finish());
  try {
    rethrowKnownErrorTypes(grpcError(status.ABORTED, 'MultiOperation could not be executed.', [multi]) as never);
  } catch (error) {
    return error;
  }
  throw new Error('the client did not unpack the multi-operation failure');
}

function deadlineIn(ms: number): CallDeadline {
  const at = Date.now() + ms;
  return { at, remainingMs: () => Math.max(0, at - Date.now()) };
}

/** Calls retryWhileExhausted with `refusal` thrown twice before success: the number of attempts it made. */
async function attemptsWhenRefusedTwiceWith(refusal: () => unknown): Promise<number> {
  let attempts = 0;
  await retryWhileExhausted(async () => {
    attempts++;
    if (attempts < 3) throw refusal();
    return 'admitted';
  }, deadlineIn(5_000)).catch(() => undefined);
  return attempts;
}

describe('retryWhileExhausted', () => {
  test('when Temporal keeps refusing with RESOURCE_EXHAUSTED, then the retries stop before the call deadline and the refusal counts as Temporal unavailable', async () => {
    let attempts = 0;
    const started = Date.now();
    const refusal = await retryWhileExhausted(async () => {
      attempts++;
      throw grpcError(status.RESOURCE_EXHAUSTED);
    }, deadlineIn(600)).catch((error: unknown) => error);
    // Near the 600 ms deadline, not on for the seconds a longer retry would take (slack for a busy CI machine).
    expect(Date.now() - started).toBeLessThanOrEqual(1_200);
    expect(attempts).toBeGreaterThan(1);
    expect(isTemporalUnavailable(refusal)).toBe(true);
  });

  test('when the client wraps a RESOURCE_EXHAUSTED gRPC error (ServiceError cause), then it is retried until it succeeds', async () => {
    expect(
      await attemptsWhenRefusedTwiceWith(() => new ServiceError('Update-With-Start failed', { cause: grpcError(status.RESOURCE_EXHAUSTED, 'busy') })),
    ).toBe(3);
  });

  test('when the server dropped the update with its failed workflow task (WorkflowNotReadyFailure), then it is retried, whether it came through update-with-start or a plain update', async () => {
    expect(isDroppedUpdate(droppedUpdateWithStart())).toBe(true);
    expect(await attemptsWhenRefusedTwiceWith(droppedUpdateWithStart)).toBe(3);
    const plainUpdate = () =>
      new ServiceError('Workflow Update failed', { cause: grpcError(status.FAILED_PRECONDITION, DROPPED_MESSAGE, [workflowNotReady()]) });
    expect(await attemptsWhenRefusedTwiceWith(plainUpdate)).toBe(3);
  });

  test('when the server aborted an update because its run was closing for continue-as-new (NOT_FOUND), then it is sent again under its id', async () => {
    expect(
      await attemptsWhenRefusedTwiceWith(
        () => new ServiceError('Update-With-Start failed', { cause: grpcError(status.NOT_FOUND, 'workflow update was aborted by closing workflow') }),
      ),
    ).toBe(3);
  });

  test('when only the message text or a bare code number says "refused", then the error is thrown at once: errors are recognised by type and status', async () => {
    const lookalikes = [
      () => new Error(DROPPED_MESSAGE),
      () => grpcError(status.FAILED_PRECONDITION, DROPPED_MESSAGE),
      () => Object.assign(new Error('8 RESOURCE_EXHAUSTED: busy'), { code: 8 }),
    ];
    for (const lookalike of lookalikes) expect(await attemptsWhenRefusedTwiceWith(lookalike)).toBe(1);
  });

  test('when the error is an answer (not a refusal for load), then it is thrown at once and is not Temporal unavailable', async () => {
    let attempts = 0;
    const answer = ApplicationFailure.create({ type: 'QuotaExceeded', message: 'quota', nonRetryable: true });
    await expect(
      retryWhileExhausted(async () => {
        attempts++;
        throw answer;
      }, deadlineIn(5_000)),
    ).rejects.toBe(answer);
    expect(attempts).toBe(1);
    expect(isTemporalUnavailable(answer)).toBe(false);
    expect(isTemporalUnavailable(grpcError(status.NOT_FOUND))).toBe(false);
  });

  test('when an update RPC timed out or was cancelled, then it counts as Temporal unavailable', () => {
    expect(isTemporalUnavailable(new WorkflowUpdateRPCTimeoutOrCancelledError('Workflow update call timeout or cancelled'))).toBe(true);
  });
});
