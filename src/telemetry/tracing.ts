import { diag, DiagLogLevel, trace, type DiagLogger } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * Tracing, configured only by the standard OpenTelemetry variables (docs/tracing.md):
 *
 * - on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set, and neither
 *   OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none; otherwise off: no provider, no exporter,
 *   the API's no-op tracer, and no span helper does more than check `tracingEnabled()`;
 * - OTLP over HTTP, JSON (OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL=http/json) or protobuf (http/protobuf,
 *   the default); the exporters read the endpoint, headers, timeout and compression variables;
 * - OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES name the process; OTEL_TRACES_SAMPLER(_ARG) and
 *   OTEL_BSP_* are read by the SDK.
 *
 * Spans leave through a batch span processor: ending a span only queues it (a full queue drops), and
 * each export is bounded by its timeout, so a slow or unreachable collector never holds a request.
 */
export interface Tracing {
  readonly serviceName: string;
  readonly resource: Resource;
  /** Where the spans go: the workflow spans (the worker's sink) join the process's own. */
  readonly spanProcessor: SpanProcessor;
  /** Sends what is queued; waits at most FLUSH_WAIT_MS (a stop is never held by a collector), failures only reported. */
  flush(): Promise<void>;
}

export type TracingEnv = Readonly<Record<string, string | undefined>>;

/** The configuration problem that stops a process at start (an unknown protocol). */
export class TracingConfigError extends Error {
  override readonly name = 'TracingConfigError';
}

let started: Tracing | null = null;

/** The longest a flush (at a stop) waits for the collector; the export itself is bounded by OTEL_EXPORTER_OTLP_TIMEOUT. */
export const FLUSH_WAIT_MS = 2000;

function atMost(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  return Promise.race([work, waited]).finally(() => clearTimeout(timer));
}

/** Whether this process exports traces (startTracing found them configured). */
export function tracingEnabled(): boolean {
  return started !== null;
}

/** The process's tracing, if on. */
export function currentTracing(): Tracing | null {
  return started;
}

function isTrue(value: string | undefined): boolean {
  return value?.trim().toLowerCase() === 'true';
}

/** Whether the variables ask for traces: an OTLP endpoint is set, and the SDK is not disabled. */
export function tracingRequested(env: TracingEnv = process.env): boolean {
  if (isTrue(env.OTEL_SDK_DISABLED)) return false;
  if (env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim());
}

function createExporter(env: TracingEnv): SpanExporter {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim().toLowerCase();
  if (protocol === 'http/json') return new OtlpJsonExporter();
  if (protocol === 'http/protobuf') return new OtlpProtobufExporter();
  throw new TracingConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol} is not supported: use http/protobuf or http/json (OTLP over HTTP)`);
}

/**
 * Starts tracing for this process if the variables ask for it (idempotent: the first call names the
 * service; a process that wires the API and the worker, as the test stacks do, has one provider).
 * `warn` hears export failures and SDK warnings (a collector down is worth a line, never an error).
 */
export function startTracing(defaultServiceName: string, options: { env?: TracingEnv; warn?: (message: string) => void } = {}): Tracing | null {
  if (started) return started;
  const env = options.env ?? process.env;
  if (!tracingRequested(env)) return null;
  const exporter = createExporter(env);
  if (options.warn) diag.setLogger(diagToWarn(options.warn), DiagLogLevel.WARN);
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over the default name.
  const resource = new Resource({ 'service.name': defaultServiceName }).merge(envDetectorSync.detect());
  const spanProcessor = new BatchSpanProcessor(exporter);
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({ contextManager: new AsyncLocalStorageContextManager(), propagator: new W3CTraceContextPropagator() });
  started = {
    serviceName: String(resource.attributes['service.name'] ?? defaultServiceName),
    resource,
    spanProcessor,
    flush: () =>
      atMost(
        provider.forceFlush().catch((error: unknown) => options.warn?.(`trace export failed: ${String(error)}`)),
        FLUSH_WAIT_MS,
      ),
  };
  return started;
}

/** Sends what is queued, if tracing is on. */
export async function flushTracing(): Promise<void> {
  await started?.flush();
}

/** The tracer of vm-tenant's own spans (the no-op tracer while tracing is off). */
export function vmTenantTracer() {
  return trace.getTracer('vm-tenant');
}

function diagToWarn(warn: (message: string) => void): DiagLogger {
  const say = (message: string, ...args: unknown[]) => warn([message, ...args.map(String)].join(' '));
  return { error: say, warn: say, info: () => undefined, debug: () => undefined, verbose: () => undefined };
}
