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
