/**
 * The workflow side of tracing (docs/tracing.md): not a workflow, the workflow interceptors module
 * (WORKFLOW_INTERCEPTOR_MODULES in src/workers/workflow-bundle.ts, in the bundle and in the worker's
 * workflowModules). The SDK's OpenTelemetry interceptors, each method gated on a trace to continue:
 * an execution, update, signal or query whose headers carry no trace context (its caller does not
 * trace), and an outbound call made outside any span, go straight to `next`, exactly as they would
 * without this module: no span, no header, no SDK flag, no extra yield, so histories recorded
 * without tracing replay unchanged. Continue-as-new is never traced: a tenant's runs follow each other
 * for months and would otherwise all join the trace of the request that started the first.
 */
import * as otel from '@opentelemetry/api';
import { TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import {
  OpenTelemetryInboundInterceptor,
  OpenTelemetryInternalsInterceptor,
  OpenTelemetryOutboundInterceptor,
} from '@temporalio/interceptors-opentelemetry/lib/workflow';
import type {
  ActivityInput,
  ContinueAsNewInput,
  LocalActivityInput,
  Next,
  QueryInput,
  SignalInput,
  SignalWorkflowInput,
  StartChildWorkflowExecutionInput,
  UpdateInput,
  WorkflowExecuteInput,
  WorkflowInboundCallsInterceptor,
  WorkflowInterceptors,
  WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';

const carriesTrace = (input: { headers: Record<string, unknown> }): boolean => input.headers[TRACE_HEADER] !== undefined;
const inSpan = (): boolean => otel.trace.getSpan(otel.context.active()) !== undefined;

class TracedInbound extends OpenTelemetryInboundInterceptor {
  override execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    return carriesTrace(input) ? super.execute(input, next) : next(input);
  }
  override handleSignal(input: SignalInput, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>): Promise<void> {
    return carriesTrace(input) ? super.handleSignal(input, next) : next(input);
  }
  override handleUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>): Promise<unknown> {
    return carriesTrace(input) ? super.handleUpdate(input, next) : next(input);
  }
  override validateUpdate(input: UpdateInput, next: Next<WorkflowInboundCallsInterceptor, 'validateUpdate'>): void {
    return carriesTrace(input) ? super.validateUpdate(input, next) : next(input);
  }
  override handleQuery(input: QueryInput, next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>): Promise<unknown> {
    return carriesTrace(input) ? super.handleQuery(input, next) : next(input);
  }
}

class TracedOutbound extends OpenTelemetryOutboundInterceptor {
  override scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>): Promise<unknown> {
    return inSpan() ? super.scheduleActivity(input, next) : next(input);
  }
  override scheduleLocalActivity(input: LocalActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>): Promise<unknown> {
    return inSpan() ? super.scheduleLocalActivity(input, next) : next(input);
  }
  override startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ): Promise<[Promise<string>, Promise<unknown>]> {
    return inSpan() ? super.startChildWorkflowExecution(input, next) : next(input);
  }
  override signalWorkflow(input: SignalWorkflowInput, next: Next<WorkflowOutboundCallsInterceptor, 'signalWorkflow'>): Promise<void> {
    return inSpan() ? super.signalWorkflow(input, next) : next(input);
  }
  override continueAsNew(input: ContinueAsNewInput, next: Next<WorkflowOutboundCallsInterceptor, 'continueAsNew'>): Promise<never> {
    return next(input);
  }
}

export const interceptors = (): WorkflowInterceptors => ({
  inbound: [new TracedInbound()],
  outbound: [new TracedOutbound()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
