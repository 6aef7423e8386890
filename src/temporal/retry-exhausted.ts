import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallDeadline } from './call-deadline';
import { grpcStatusOf, isDroppedUpdate, isUnprocessedUpdate, isUpdateAbortedByClosingRun } from './temporal-unavailable';

/** A refusal after which the same call, sent again, may succeed: nothing of it took effect. */
function isRetryableRefusal(error: unknown): boolean {
  return grpcStatusOf(error) === status.RESOURCE_EXHAUSTED || isDroppedUpdate(error) || isUnprocessedUpdate(error) || isUpdateAbortedByClosingRun(error);
}

/**
 * Retries a call Temporal refused for load (RESOURCE_EXHAUSTED, e.g. the 10 in-flight updates per
 * workflow cap, hit when several API processes burst on one tenant), an update dropped with its
 * failed workflow task, or an update the server rejected because a worker completed the workflow
 * task that carried it without processing it, with jittered backoff, so none surfaces as a 5xx
 * while there is time. The call sends the same update id each time (the caller's closure holds it),
 * so a retry is the same update, never a second one. Stays inside the caller's deadline: when the
 * next backoff would pass it, the refusal is thrown (and answered as Temporal unavailable).
 */
export async function retryWhileExhausted<T>(call: () => Promise<T>, deadline: CallDeadline): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isRetryableRefusal(error)) throw error;
      const cap = Math.min(1000, 20 * 2 ** attempt);
      const backoff = cap / 2 + Math.random() * cap;
      if (backoff >= deadline.remainingMs()) throw error;
      await sleep(backoff);
    }
  }
}
