import { sql, type Kysely } from 'kysely';
import { SERVICE_ROLE } from './2026_11_23_0001_tenants_tokens_ledger';

/**
 * The trace an entry was appended in (docs/tracing.md): the W3C traceparent (and tracestate) of the
 * span that was active when the entry was appended, written in the append's transaction, so that the
 * event relay publishes the entry's event as a span of that trace. Beside the ledger, not in it: the
 * hashed entry is unchanged, and a row here is only written while tracing is on and the span is
 * sampled. Rows older than a day are purged by the worker's housekeeping (an event is published within
 * seconds; a trace continued a day later helps nobody).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('audit_event_traces')
    .addColumn('event_id', 'uuid', (c) => c.primaryKey())
    .addColumn('traceparent', 'text', (c) => c.notNull())
    .addColumn('tracestate', 'text')
    .addColumn('recorded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.createIndex('audit_event_traces_recorded_at_idx').on('audit_event_traces').column('recorded_at').execute();
  await sql`grant select, insert, delete on audit_event_traces to ${sql.id(SERVICE_ROLE)}`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('audit_event_traces').execute();
}
