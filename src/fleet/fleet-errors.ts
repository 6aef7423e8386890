import type { FleetRejectionCode } from './fleet-types';

/**
 * The fleet refused the request and will refuse it again: do not retry. Past an activity's
 * boundary it becomes an ApplicationFailure whose type is this `name`.
 */
export class FleetRejectedError extends Error {
  override readonly name = 'FleetRejectedError';
  readonly retryable = false;

  constructor(
    readonly code: FleetRejectionCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The fleet could not be reached or failed (timeout, connection refused, 5xx): retrying may help. */
export class FleetUnavailableError extends Error {
  override readonly name = 'FleetUnavailableError';
  readonly retryable = true;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The caller aborted the call through its own signal; says nothing about the fleet (a spawn may or
 * may not have been applied: repeat it with the same request_id to find out). Named 'AbortError',
 * the name every abort-aware caller checks (a Temporal activity that passes its cancellation signal
 * is then reported as cancelled, not failed); `cause` is the signal's reason.
 */
export class FleetCallAbortedError extends Error {
  override readonly name = 'AbortError';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
