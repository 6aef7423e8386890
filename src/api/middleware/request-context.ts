import { randomUUID } from 'node:crypto';
import type { RequestHandler } from 'express';
import '../request-types';

const CLIENT_REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives every request a server-generated id, echoed in X-Request-Id, and records where it came
 * from. A caller's own X-Request-Id is kept apart as `client_request_id` (when well formed), so a
 * client can correlate its requests but can never choose, reuse or collide the id the logs, the
 * workflow and the ledger know the request by. `req.ip` honours X-Forwarded-For only from proxies
 * listed in TRUSTED_PROXIES.
 */
export function requestContext(): RequestHandler {
  return (req, res, next) => {
    const offered = req.get('x-request-id');
    const requestId = randomUUID();
    const userAgent = req.get('user-agent');
    req.context = {
      request_id: requestId,
      client_request_id: offered && CLIENT_REQUEST_ID_PATTERN.test(offered) ? offered : null,
      actor_token_id: null,
      actor_scope: null,
      source_ip: req.ip ?? req.socket.remoteAddress ?? null,
      user_agent: userAgent ? userAgent.slice(0, 512) : null,
    };
    res.setHeader('X-Request-Id', requestId);
    next();
  };
}
