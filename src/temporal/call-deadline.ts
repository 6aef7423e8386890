import type { Client } from '@temporalio/client';
import { isTemporalUnavailable, TemporalUnavailableError } from './temporal-unavailable';

/** The instant a Temporal call must be answered by, shared by every attempt inside it. */
export interface CallDeadline {
  readonly at: number;
  remainingMs(): number;
}

/**
 * Runs `call` (any number of Temporal requests, retries and queueing) under one deadline of
 * `timeoutMs`. Every gRPC request made inside carries the deadline (Client.withDeadline), so the
 * server drops work nobody waits for, and an abort signal cancels whatever is still pending when it
 * passes; the race against the timer is the backstop for time spent outside gRPC (the per-tenant
 * queue, backoff sleeps). Temporal unavailable, too slow or refusing for load becomes
 * TemporalUnavailableError; every other error (an update's ApplicationFailure) passes unchanged.
 */
export async function withCallDeadline<T>(client: Client, operation: string, timeoutMs: number, call: (deadline: CallDeadline) => Promise<T>): Promise<T> {
  const at = Date.now() + timeoutMs;
  const deadline: CallDeadline = { at, remainingMs: () => Math.max(0, at - Date.now()) };
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new TemporalUnavailableError(operation, timeoutMs));
    }, timeoutMs);
  });
  try {
    return await Promise.race([client.withAbortSignal(controller.signal, () => client.withDeadline(at, () => call(deadline))), expired]);
  } catch (error) {
    if (error instanceof TemporalUnavailableError || !isTemporalUnavailable(error)) throw error;
    throw new TemporalUnavailableError(operation, timeoutMs, { cause: error });
  } finally {
    clearTimeout(timer);
  }
}
