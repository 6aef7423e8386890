import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

export interface AuthFailureLimiter {
  /** Seconds the address must wait before it may try again, or 0 when it is not blocked. */
  blockedFor(address: string): Promise<number>;
  /** Counts one failed authentication of the address. */
  recordFailure(address: string): Promise<void>;
}

export interface AuthFailureLimits {
  failuresPerWindow: number;
  windowSeconds: number;
}

export const DEFAULT_AUTH_FAILURE_LIMITS: AuthFailureLimits = Object.freeze({ failuresPerWindow: 60, windowSeconds: 60 });

/**
 * Failed authentications per client address, counted in this process's memory. Not in Postgres on
 * purpose: a failure must cost no database write, or a flood of garbage tokens would become a flood
 * of writes (and a Postgres outage would turn every 401 into a 503). Each API process counts on its
 * own, so N processes allow N times the budget; that still bounds the cost per address, and a token
 * has 178 random bits, so the limit is about load, not about guessing.
 */
export function createAuthFailureLimiter(limits: AuthFailureLimits = DEFAULT_AUTH_FAILURE_LIMITS): AuthFailureLimiter {
  const limiter = new RateLimiterMemory({ keyPrefix: 'auth-failure', points: limits.failuresPerWindow, duration: limits.windowSeconds });
  const waitSeconds = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));
  return {
    async blockedFor(address) {
      const res = await limiter.get(address);
      return res && res.consumedPoints >= limits.failuresPerWindow ? waitSeconds(res) : 0;
    },
    async recordFailure(address) {
      await limiter.penalty(address, 1);
    },
  };
}
