import { status } from '@grpc/grpc-js';
import { isGrpcServiceError, WorkflowUpdateRPCTimeoutOrCancelledError } from '@temporalio/client';
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
  return isDroppedUpdate(error) || error instanceof WorkflowUpdateRPCTimeoutOrCancelledError;
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
