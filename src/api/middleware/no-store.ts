import type { RequestHandler } from 'express';

/**
 * `Cache-Control: no-store` on every API answer: token issue carries a secret, and every other
 * answer is one tenant's private data, which no browser, proxy or CDN cache should keep.
 */
export function noStore(): RequestHandler {
  return (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
}
