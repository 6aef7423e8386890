import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes, type Span } from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from 'nats';
import { tracingEnabled, vmTenantTracer } from './tracing';

/** The W3C trace context of a span, as the headers carry it. */
export interface TraceHeaders {
  traceparent: string;
  tracestate: string | null;
}

/** Ends `span` with the outcome of `work`, an error recorded on it. */
async function endWith<T>(span: Span, work: () => Promise<T>, failed: (value: T) => boolean = () => false): Promise<T> {
  try {
    const value = await work();
    if (failed(value)) span.setStatus({ code: SpanStatusCode.ERROR });
    return value;
  } catch (error) {
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    span.end();
  }
}

/**
 * An outbound HTTP call as a client span (`<method> <route>`), the W3C trace context injected into
 * the request's headers (the callee may continue the trace). `call` gets the headers to add and keeps
 * its own deadline. While tracing is off: `call({})`, nothing else.
 */
export function httpClientSpan(
  method: string,
  route: string,
  url: string,
  call: (traceHeaders: Record<string, string>) => Promise<Response>,
): Promise<Response> {
  if (!tracingEnabled()) return call({});
  const target = new URL(url);
  const attributes: Attributes = {
    'http.request.method': method,
    'url.full': url,
    'url.template': route,
    'server.address': target.hostname,
    'server.port': Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
  };
  return vmTenantTracer().startActiveSpan(`${method} ${route}`, { kind: SpanKind.CLIENT, attributes }, (span) =>
    endWith(
      span,
      async () => {
        const carrier: Record<string, string> = {};
        propagation.inject(context.active(), carrier);
        const res = await call(carrier);
        span.setAttribute('http.response.status_code', res.status);
        return res;
      },
      (res) => res.status >= 500,
    ),
  );
}

/** The active span's trace context, if tracing is on and the span is sampled (otherwise there is nothing to continue). */
export function activeTraceHeaders(): TraceHeaders | null {
  if (!tracingEnabled()) return null;
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !trace.isSpanContextValid(spanContext) || (spanContext.traceFlags & TraceFlags.SAMPLED) === 0) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? { traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? null } : null;
}

/**
 * A publish as a producer span, a child of the trace context `parent` (the request the event was
 * recorded in); the context is also put in the message's headers (traceparent, tracestate), so a
 * consumer may continue the trace. Without a parent, or while tracing is off: `publish(undefined)`.
 */
export function producerSpan<T>(
  parent: TraceHeaders | undefined,
  name: string,
  attributes: Attributes,
  publish: (headers: MsgHdrs | undefined) => Promise<T>,
): Promise<T> {
  if (!parent || !tracingEnabled()) return publish(undefined);
  const carrier: Record<string, string> = { traceparent: parent.traceparent };
  if (parent.tracestate) carrier.tracestate = parent.tracestate;
  const parentContext = propagation.extract(ROOT_CONTEXT, carrier);
  return vmTenantTracer().startActiveSpan(name, { kind: SpanKind.PRODUCER, attributes }, parentContext, (span) =>
    endWith(span, () => {
      const injected: Record<string, string> = {};
      propagation.inject(context.active(), injected);
      const hdrs = natsHeaders();
      for (const [key, value] of Object.entries(injected)) hdrs.set(key, value);
      return publish(hdrs);
    }),
  );
}

/** trace_id and span_id of the active span, for a log line (pino's mixin); {} outside a span. */
export function logTraceFields(): { trace_id?: string; span_id?: string } {
  const spanContext = trace.getSpanContext(context.active());
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}

/**
 * `fn`, bound to the active context: it runs in it wherever it is called from. A LedgerWriter unit
 * runs in the batch of whoever flushed first; bound, it records the trace of the caller that sent it.
 */
export function bindToActiveContext<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return tracingEnabled() ? context.bind(context.active(), fn) : fn;
}
