import { AUDIT_EVENT_TYPES } from '../shared/audit-event-types';
import { isTenantId } from '../shared/tenant-id';
import type { AuditQuery } from '../ledger/ledger-queries';
import { UsageError } from './usage-error';

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 10_000;
export const OUTPUT_FORMATS = ['json', 'table'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The `--filter key=value` keys and the query field each one sets. */
const FILTER_KEYS = { 'tenant-id': 'tenant_id', 'vm-id': 'vm_id', 'event-type': 'event_type' } as const;
type FilterKey = keyof typeof FILTER_KEYS;

/** The raw `read` flags as node:util parseArgs returns them. */
export interface RawReadOptions {
  filter?: string[];
  'event-type'?: string;
  since?: string;
  until?: string;
  limit?: string;
  order?: string;
  format?: string;
}

export interface ReadRequest {
  query: AuditQuery;
  format: OutputFormat;
}

// A calendar date, or a date-time that states its offset: a time without one would be read in the
// host's local zone, which makes the same command select different entries on different machines.
const ISO_INSTANT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?)?$/i;

export function parseInstant(flag: string, raw: string): Date {
  const match = ISO_INSTANT.exec(raw);
  if (!match) {
    throw new UsageError(`${flag} must be an ISO 8601 date (2026-06-14) or date-time with offset (2026-06-14T09:30:00Z), got ${JSON.stringify(raw)}`);
  }
  if (match[4] !== undefined && match[7] === undefined) {
    throw new UsageError(`${flag} needs a time zone offset (Z or +hh:mm), got ${JSON.stringify(raw)}`);
  }
  const date = new Date(raw);
  // Date accepts 2026-02-30 and rolls it over; refuse days that do not exist instead.
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (Number.isNaN(date.getTime()) || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    throw new UsageError(`${flag} is not a valid date: ${JSON.stringify(raw)}`);
  }
  return date;
}

function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return DEFAULT_LIMIT;
  const value = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(value >= 1 && value <= MAX_LIMIT)) throw new UsageError(`--limit must be a whole number from 1 to ${MAX_LIMIT}, got ${JSON.stringify(raw)}`);
  return value;
}

function oneOf<T extends string>(flag: string, allowed: readonly T[], raw: string | undefined, fallback: T): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

function checkValue(key: FilterKey, value: string): void {
  if (value === '') throw new UsageError(`filter ${key} needs a value`);
  if (key === 'tenant-id' && !isTenantId(value)) {
    throw new UsageError(`tenant-id must be 3-63 lowercase letters, digits or hyphens starting with a letter, got ${JSON.stringify(value)}`);
  }
  if (key === 'event-type' && !(AUDIT_EVENT_TYPES as readonly string[]).includes(value)) {
    throw new UsageError(`unknown event type ${JSON.stringify(value)}; known types: ${AUDIT_EVENT_TYPES.join(', ')}`);
  }
}

/**
 * Turns the `read` flags into a ledger query. Each filter is an equality on one column, so giving
 * the same key twice with different values (including `--event-type` next to
 * `--filter event-type=...`) is refused rather than silently keeping one of them.
 */
export function parseReadOptions(raw: RawReadOptions): ReadRequest {
  const equal: Partial<Record<FilterKey, string>> = {};
  const set = (key: FilterKey, value: string): void => {
    checkValue(key, value);
    const previous = equal[key];
    if (previous !== undefined && previous !== value) {
      throw new UsageError(`conflicting values for ${key}: ${JSON.stringify(previous)} and ${JSON.stringify(value)}`);
    }
    equal[key] = value;
  };
  for (const filter of raw.filter ?? []) {
    const eq = filter.indexOf('=');
    if (eq <= 0) throw new UsageError(`--filter must look like key=value, got ${JSON.stringify(filter)}`);
    const key = filter.slice(0, eq);
    if (!Object.hasOwn(FILTER_KEYS, key)) {
      throw new UsageError(`unknown filter key ${JSON.stringify(key)}; use one of ${Object.keys(FILTER_KEYS).join(', ')}`);
    }
    set(key as FilterKey, filter.slice(eq + 1));
  }
  if (raw['event-type'] !== undefined) set('event-type', raw['event-type']);

  const query: AuditQuery = {
    limit: parseLimit(raw.limit),
    order: oneOf('--order', ['asc', 'desc'] as const, raw.order, 'asc'),
  };
  for (const key of Object.keys(equal) as FilterKey[]) query[FILTER_KEYS[key]] = equal[key];
  if (raw.since !== undefined) query.since = parseInstant('--since', raw.since);
  if (raw.until !== undefined) query.until = parseInstant('--until', raw.until);
  if (query.since && query.until && query.since.getTime() >= query.until.getTime()) {
    throw new UsageError('--since must be earlier than --until');
  }
  return { query, format: oneOf('--format', OUTPUT_FORMATS, raw.format, 'json') };
}
