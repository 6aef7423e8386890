import type { RequestHandler } from 'express';
import type { Logger } from '../../logging/logger';
import '../request-types';

/** One structured line per request: no headers, no bodies, no query strings, so no secrets. */
export function accessLog(log: Logger): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
      log.info(
        {
          request_id: req.context?.request_id,
          client_request_id: req.context?.client_request_id ?? null,
          method: req.method,
          route: req.route?.path ?? null,
          status: res.statusCode,
          duration_ms: Math.round(durationMs * 100) / 100,
          tenant_id: req.caller?.tenant_id ?? null,
          token_id: req.caller?.token_id ?? null,
        },
        'request',
      );
    });
    next();
  };
}
