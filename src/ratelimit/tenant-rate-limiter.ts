import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

export interface TenantRateLimiter {
  consume(tenantId: string, requestsPerMinute: number): Promise<RateDecision>;
}

const WINDOW_SECONDS = 60;

/**
 * Per-tenant requests-per-minute, counted in Postgres so every API process shares one budget.
 * The limit is read from the tenant row on every request, so a quota change applies at once:
 * limiters differ only in their point ceiling and share the same counter rows.
 */
export function createTenantRateLimiter(pool: pg.Pool): TenantRateLimiter {
  const byLimit = new Map<number, RateLimiterPostgres>();
  const limiterFor = (points: number): RateLimiterPostgres => {
    let limiter = byLimit.get(points);
    if (!limiter) {
      limiter = new RateLimiterPostgres({ storeClient: pool, storeType: 'pool', tableName: 'api_rate_limits', tableCreated: true, keyPrefix: 'tenant', points, duration: WINDOW_SECONDS });
      byLimit.set(points, limiter);
    }
    return limiter;
  };
  return {
    async consume(tenantId, requestsPerMinute) {
      try {
        const res = await limiterFor(requestsPerMinute).consume(tenantId, 1);
        return { allowed: true, limit: requestsPerMinute, remaining: res.remainingPoints, resetSeconds: Math.ceil(res.msBeforeNext / 1000) };
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return { allowed: false, limit: requestsPerMinute, remaining: 0, resetSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)) };
      }
    },
  };
}
