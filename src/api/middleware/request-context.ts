import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import '../request-types';

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request an id (the caller's X-Request-Id when it is well formed) and records where
 * it came from. `req.ip` honours X-Forwarded-For only from proxies listed in TRUSTED_PROXIES.
 */
export function requestContext(): RequestHandler {
  return (req, res, next) => {
    const offered = req.get('x-request-id');
    const requestId = offered && REQUEST_ID_PATTERN.test(offered) ? offered : randomUUID();
    const userAgent = req.get('user-agent');
    req.context = {
      request_id: requestId,
      actor_token_id: null,
      actor_scope: null,
      source_ip: req.ip ?? req.socket.remoteAddress ?? null,
      user_agent: userAgent ? userAgent.slice(0, 512) : null,
    };
    res.setHeader('X-Request-Id', requestId);
    next();
  };
}
