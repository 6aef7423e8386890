import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/worker';
import type { OpenTelemetrySinks } from '@temporalio/interceptors-opentelemetry/lib/workflow/definitions';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import type { ActivityInterceptorsFactory, InjectedSinks } from '@temporalio/worker';
import { currentTracing } from './tracing';

/**
 * The Temporal SDK's OpenTelemetry interceptors (docs/tracing.md), wired only while tracing is on.
 * The client's put the caller's trace context in the headers of every start, update and signal; the
 * workflow's (src/workflows/tracing-interceptors.ts, always in the bundle) continue it in the
 * workflow and pass it on to the activities it schedules; the activities' continue it there.
 */
export function workflowClientInterceptors(): WorkflowClientInterceptor[] {
  return currentTracing() ? [new OpenTelemetryWorkflowClientInterceptor()] : [];
}

export function activityInterceptors(): ActivityInterceptorsFactory[] {
  if (!currentTracing()) return [];
  return [(ctx) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx), outbound: new OpenTelemetryActivityOutboundInterceptor(ctx) })];
}

/**
 * Where the workflow's spans leave the sandbox: this process's span processor while tracing is on.
 * Off, the sink is still there and drops them, so that a workflow continuing a trace begun by a
 * process that traces (an API with tracing on) does not make this worker log an unregistered sink.
 */
export function workflowSpanSinks(): InjectedSinks<OpenTelemetrySinks> {
  const tracing = currentTracing();
  if (tracing) return { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) };
  return { exporter: { export: { fn: () => undefined } } };
}
