import type { JetStreamClient, JetStreamPublishOptions, PubAck } from 'nats';
import type { AuditEventRow } from '../db/tables';
import { producerSpan, type TraceHeaders } from '../telemetry/spans';

/**
 * Publishes an entry's event as a producer span (`publish <event type>`) of the trace it was
 * appended in (`trace`, from audit_event_traces; docs/tracing.md), that trace's context also in the
 * message headers (traceparent, tracestate). Without one, a plain publish.
 */
export function publishEntryEvent(
  js: JetStreamClient,
  subject: string,
  payload: string,
  row: Pick<AuditEventRow, 'event_id' | 'event_type'>,
  trace: TraceHeaders | undefined,
  options: Partial<JetStreamPublishOptions>,
): Promise<PubAck> {
  const attributes = {
    'messaging.system': 'nats',
    'messaging.operation.type': 'send',
    'messaging.destination.name': subject,
    'messaging.message.id': row.event_id,
    'vm_tenant.event_type': row.event_type,
  };
  return producerSpan(trace, `publish ${row.event_type}`, attributes, (headers) => js.publish(subject, payload, headers ? { ...options, headers } : options));
}
