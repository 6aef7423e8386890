import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { tracingEnabled, vmTenantTracer } from '../../telemetry/tracing';

/**
 * One server span per request (docs/tracing.md), the root of the request's trace, or a child of the
 * caller's when it sent a W3C traceparent. Everything the request does runs in the span's context:
 * the Temporal call, the ledger appends, and every log line (trace_id, span_id). Named by the route
 * pattern once routing has matched (`POST /v1/vms`), never by the raw path, which holds ids. While
 * tracing is off: next(), nothing else.
 */
export function traceRequests(): RequestHandler {
  return (req, res, next) => {
    if (!tracingEnabled()) return next();
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = vmTenantTracer().startSpan(
      req.method,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path, 'url.scheme': req.protocol } },
      parent,
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const route = typeof req.route?.path === 'string' ? `${req.baseUrl}${req.route.path}` : null;
      if (route) {
        span.updateName(`${req.method} ${route}`);
        span.setAttribute('http.route', route);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      // The client went away before the answer was written.
      if (!res.writableFinished) span.setAttribute('http.response.aborted', true);
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  };
}
