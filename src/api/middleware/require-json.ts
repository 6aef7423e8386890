import type { RequestHandler } from 'express';
import { problems } from '../problem';

/** Requests that carry a body must say it is JSON; anything else is 415, before parsing. */
export function requireJsonBody(): RequestHandler {
  return (req, _res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (['POST', 'PUT', 'PATCH'].includes(req.method) && hasBody && !req.is('application/json')) {
      throw problems.unsupportedMediaType('Send the request body as application/json.');
    }
    next();
  };
}
