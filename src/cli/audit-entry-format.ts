import type { AuditEventRow } from '../db/tables';
import { toAuditEntry, type AuditEntry } from '../ledger/audit-entry';

// The entry shape (actor and source grouped, seq as a decimal string) is the API's, so a line
// printed here and an entry returned by the API compare equal. (The C1 range includes U+009B CSI.)

// DEL and the C1 controls pass through JSON.stringify unescaped; ledger
// fields such as user_agent come from callers, so escape them before they reach a terminal.
const RAW_CONTROLS = /[\u007f-\u009f]/g;

/** One JSON object per line (JSON Lines), safe to print to a terminal. */
export function formatJsonLine(row: AuditEventRow): string {
  return JSON.stringify(toAuditEntry(row)).replace(RAW_CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const TABLE_COLUMNS: ReadonlyArray<{ title: string; value: (e: AuditEntry) => string }> = [
  { title: 'SEQ', value: (e) => e.seq },
  { title: 'OCCURRED_AT', value: (e) => e.occurred_at },
  { title: 'EVENT_TYPE', value: (e) => e.event_type },
  { title: 'TENANT_ID', value: (e) => e.tenant_id ?? '-' },
  { title: 'VM_ID', value: (e) => e.vm_id ?? '-' },
  { title: 'ACTOR_TOKEN', value: (e) => e.actor.token_id ?? '-' },
  { title: 'REQUEST_ID', value: (e) => e.source.request_id ?? '-' },
  { title: 'HASH', value: (e) => e.hash.slice(0, 12) },
];

// eslint-disable-next-line no-control-regex -- finding control characters is the point
const ALL_CONTROLS = /[\u0000-\u001f\u007f-\u009f]/g;

/** A fixed-width table with a header line; cells are single-line and free of control characters. */
export function formatTable(rows: readonly AuditEventRow[]): string {
  const cells = rows.map(toAuditEntry).map((entry) => TABLE_COLUMNS.map((c) => c.value(entry).replace(ALL_CONTROLS, '?')));
  const lines = [TABLE_COLUMNS.map((c) => c.title), ...cells];
  const widths = TABLE_COLUMNS.map((_, i) => Math.max(...lines.map((line) => line[i]!.length)));
  return lines
    .map((line) =>
      line
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
