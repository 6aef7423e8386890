import type { RequestHandler } from 'express';
import type { TenantRateLimiter } from '../../ratelimit/tenant-rate-limiter';
import { problems } from '../problem';
import '../request-types';

/**
 * Enforces the tenant's api_rate_limit_rpm on every request made with one of its tokens, and
 * advertises it with the IETF RateLimit / RateLimit-Policy fields (draft-ietf-httpapi-ratelimit-headers).
 * Platform-admin requests are not counted against any tenant.
 */
export function tenantRateLimit(limiter: TenantRateLimiter): RequestHandler {
  return async (req, res, next) => {
    const caller = req.caller;
    if (!caller?.tenant_id || caller.rate_limit_rpm === null) return next();
    const decision = await limiter.consume(caller.tenant_id, caller.rate_limit_rpm);
    res.setHeader('RateLimit-Policy', `"tenant";q=${decision.limit};w=60`);
    res.setHeader('RateLimit', `"tenant";r=${decision.remaining};t=${decision.resetSeconds}`);
    if (!decision.allowed) {
      throw problems.rateLimited(decision.limit, decision.resetSeconds);
    }
    next();
  };
}
