import { trace } from '@opentelemetry/api';
import { activityInterceptors, workflowClientInterceptors } from '../../src/telemetry/temporal-tracing';
import { startTracing, TracingConfigError, tracingEnabled, tracingRequested } from '../../src/telemetry/tracing';

/** Tracing is configured by the standard OTEL_* variables only, and off (no provider, no interceptor) without an endpoint (docs/tracing.md). */
describe('tracing configuration', () => {
  test('when no OTLP endpoint is set, or the SDK or the traces exporter is disabled, then tracing is not requested', () => {
    expect(tracingRequested({})).toBe(false);
    expect(tracingRequested({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingRequested({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces', OTEL_SDK_DISABLED: 'false' })).toBe(true);
  });

  test('when tracing is off, then nothing is started: no provider (the API answers non-recording spans), no Temporal interceptor', () => {
    expect(startTracing('vm-tenant-test', { env: { OTEL_SERVICE_NAME: 'x' } })).toBeNull();
    expect(tracingEnabled()).toBe(false);
    expect(trace.getTracer('t').startSpan('s').isRecording()).toBe(false);
    expect(workflowClientInterceptors()).toEqual([]);
    expect(activityInterceptors()).toEqual([]);
  });

  test('when the protocol is grpc, then start-up fails with a message naming the variable and what is supported', () => {
    expect(() =>
      startTracing('vm-tenant-test', { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }),
    ).toThrow(TracingConfigError);
    expect(() =>
      startTracing('vm-tenant-test', { env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' } }),
    ).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: use http\/protobuf or http\/json/);
    expect(tracingEnabled()).toBe(false);
  });
});
