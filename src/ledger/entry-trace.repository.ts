import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/tables';
import { activeTraceHeaders, type TraceHeaders } from '../telemetry/spans';
import { tracingEnabled } from '../telemetry/tracing';

/**
 * The trace an entry was appended in (audit_event_traces, migration 2026_12_06_0012; docs/tracing.md),
 * beside the ledger so the hashed entry is unchanged. Written in the append's transaction, only when
 * the active span is sampled; read by the event relay, which publishes the entry's event as a span of
 * that trace.
 */
export async function recordEntryTrace(trx: Transaction<Database>, eventId: string): Promise<void> {
  const headers = activeTraceHeaders();
  if (!headers) return;
  await trx
    .insertInto('audit_event_traces')
    .values({ event_id: eventId, traceparent: headers.traceparent, tracestate: headers.tracestate })
    .onConflict((oc) => oc.column('event_id').doNothing())
    .execute();
}

/** The traces of these entries, by event id (none read while this process does not trace). */
export async function readEntryTraces(db: Kysely<Database>, eventIds: readonly string[]): Promise<Map<string, TraceHeaders>> {
  if (!tracingEnabled() || eventIds.length === 0) return new Map();
  const rows = await db.selectFrom('audit_event_traces').select(['event_id', 'traceparent', 'tracestate']).where('event_id', 'in', eventIds).execute();
  return new Map(rows.map((row) => [row.event_id, { traceparent: row.traceparent, tracestate: row.tracestate }]));
}

/** Forgets the traces of entries appended before `before` (their events went out long ago). */
export async function deleteEntryTracesBefore(db: Kysely<Database>, before: Date): Promise<number> {
  const result = await db.deleteFrom('audit_event_traces').where('recorded_at', '<', before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
