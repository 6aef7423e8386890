import { status } from '@grpc/grpc-js';
import { isGrpcServiceError } from '@temporalio/client';

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
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    if (isGrpcServiceError(current)) return current.code;
    current = current.cause;
  }
  return undefined;
}

// What a hung, partitioned, restarting or overloaded server looks like to a caller.
const UNAVAILABLE_STATUSES: ReadonlySet<status> = new Set([status.UNAVAILABLE, status.DEADLINE_EXCEEDED, status.CANCELLED, status.RESOURCE_EXHAUSTED]);

/**
 * Whether a Temporal client error means "Temporal did not serve this call" rather than an answer
 * (a workflow's ApplicationFailure, not found, …). The SDK wraps an update whose RPC hit its
 * deadline or was cancelled in WorkflowUpdateRPCTimeoutOrCancelledError (compared by name).
 */
export function isTemporalUnavailable(error: unknown): boolean {
  const code = grpcStatusOf(error);
  if (code !== undefined && UNAVAILABLE_STATUSES.has(code)) return true;
  if (isDroppedUpdate(error)) return true;
  return error instanceof Error && error.name === 'WorkflowUpdateRPCTimeoutOrCancelledError';
}

/**
 * The workflow task that held the update failed before the update was durably accepted (e.g. a
 * continue-as-new in that task met a concurrent event: UnhandledCommand), so the server dropped the
 * update. It carries no status of its own, hence the message. Sending it again, same update id, is
 * safe: it lands in the retried task or the new run.
 */
export function isDroppedUpdate(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    if (/update due to unexpected workflow task failure/i.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}
