import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { findCause } from '../shared/error-causes';
import { grpcDetailTypes } from './grpc-status-details';

/**
 * Temporal did not answer within the call's deadline, is unreachable, or kept refusing for load
 * past our retries. The API answers 503 `dependency_unavailable` naming `temporal`; the request
 * may still have taken effect (an update accepted just before the deadline), so a client retries
 * with the same Idempotency-Key.
 */
export class TemporalUnavailableError extends Error {
  override readonly name = 'TemporalUnavailableError';
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    options: { cause?: unknown } = {},
  ) {
    super(`Temporal did not complete ${operation} within ${timeoutMs} ms`, options);
  }
}

/** The gRPC status of an error from the Temporal client, found on it or along its `cause` chain. */
export function grpcStatusOf(error: unknown): status | undefined {
  return findCause(error, isGrpcServiceError)?.code;
}

// What a hung, partitioned, restarting or overloaded server looks like to a caller.
const UNAVAILABLE_STATUSES: ReadonlySet<status> = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.CANCELLED, status.RESOURCE_EXHAUSTED]);

/**
 * Whether a Temporal client error means "Temporal did not serve this call" rather than an answer
 * (a workflow's ApplicationFailure, not found, …). The SDK wraps an update whose RPC hit its
 * deadline or was cancelled in WorkflowUpdateRPCTimeoutOrCancelledError.
 */
export function isTemporalUnavailable(error: unknown): boolean {
  const code = grpcStatusOf(error);
  if (code !== undefined && UNAVAILABLE_STATUSES.has(code)) return true;
  return isDroppedUpdate(error) || isUnprocessedUpdate(error) || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError;
}

/**
 * The workflow task that held the update failed before the update was durably accepted (e.g. a
 * continue-as-new in that task met a concurrent event: UnhandledCommand), so the server dropped the
 * update: FAILED_PRECONDITION carrying a WorkflowNotReadyFailure. Sending it again, same update id,
 * is safe: it lands in the retried task or the new run.
 */
export function isDroppedUpdate(error: unknown): boolean {
  const grpc = findCause(error, isGrpcServiceError);
  return grpc?.code === status.FAILED_PRECONDITION && grpcDetailTypes(grpc).includes('temporal.api.errordetails.v1.WorkflowNotReadyFailure');
}

/**
 * The ApplicationFailure type of the server's `unprocessedUpdateFailure` (temporalio/temporal,
 * service/history/workflow/update/errors_failures.go, since server 1.24). Servers 1.28.1 to 1.28.4
 * shipped it misspelt `UnprocessedUpdategit` (fixed in 1.29.0, temporalio/temporal#8212).
 */
const UNPROCESSED_UPDATE_TYPES: ReadonlySet<string> = new Set([
  'UnprocessedUpdate',
  'UnprocessedUpdategit',
  // acceptedUpdateCompletedWorkflowFailure (same file): the run ended (continued as new) before the
  // update completed. Our handlers answer the same update id from the workflow's state in the next run.
  'AcceptedUpdateCompletedWorkflow',
]);

/**
 * The server rejected the update because the workflow task that carried it was completed without
 * the worker answering it (the update registry's RejectUnprocessed, run when a workflow task
 * completes; seen with two workers, one SIGSTOPped mid-burst). It reaches the client not as a gRPC
 * error but as the update's outcome: ExecuteMultiOperation (or UpdateWorkflowExecution) succeeds at
 * stage COMPLETED with `outcome.failure` = { message: "Workflow Update is rejected because it wasn't
 * processed by worker. …", source: "Server", applicationFailureInfo: { type: "UnprocessedUpdate",
 * nonRetryable: true } }, and the client throws WorkflowUpdateFailedError('Workflow Update failed')
 * whose `cause` is the ApplicationFailure decoded from it (`.failure` keeps the proto).
 *
 * `nonRetryable` notwithstanding, the update never ran: a rejection is not written to history and
 * leaves the registry, so sending it again with the same update id is a fresh delivery, not a
 * duplicate. Recognised by structure (the failure type, and `source` "Server", which no workflow of
 * ours can set), never by the message text: every server that rejects this way sets the type.
 */
/**
 * The server aborted an update it had not yet delivered because its run was closing (continue-as-
 * new): `AbortedByWorkflowClosingErr`, a gRPC NOT_FOUND ("workflow update was aborted by closing
 * workflow"; temporalio/temporal service/history/workflow/update/errors_failures.go). For an update
 * with start, NOT_FOUND can mean nothing else (the start creates a missing workflow): the update never
 * ran, and sent again under its id it reaches the next run.
 */
export function isUpdateAbortedByClosingRun(error: unknown): boolean {
  return grpcStatusOf(error) === status.NOT_FOUND;
}

export function isUnprocessedUpdate(error: unknown): boolean {
  const failure = findCause(error, (candidate): candidate is WorkflowUpdateFailedError => candidate instanceof WorkflowUpdateFailedError)?.cause;
  return failure instanceof ApplicationFailure && UNPROCESSED_UPDATE_TYPES.has(failure.type ?? '') && failure.failure?.source === 'Server';
}
