import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallDeadline } from './call-deadline';
import { grpcStatusOf, isDroppedUpdate } from './temporal-unavailable';

function isRetryableRefusal(error: unknown): boolean {
  return grpcStatusOf(error) === status.RESOURCE_EXHAUSTED || isDroppedUpdate(error);
}

/**
 * Retries a call Temporal refused for load (RESOURCE_EXHAUSTED, e.g. the 10 in-flight updates per
 * workflow cap, hit when several API processes burst on one tenant), or an update dropped with its
 * failed workflow task, with jittered backoff, so neither surfaces as a 5xx while there is time.
 * Stays inside the caller's deadline: when the next backoff would pass it, the refusal is thrown
 * (and answered as Temporal unavailable).
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
