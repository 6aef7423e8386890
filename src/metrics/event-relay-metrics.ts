import { sql, type Kysely } from 'kysely';
import type { Registry } from 'prom-client';
import type { Database } from '../db/tables';
import { relayCursorName } from '../events/event-relay';
import { oncePerScrape, scrapeTimeGauge } from './scrape-time-gauge';

/** Metric names, also used by the alert rules in deploy/k8s/monitoring/prometheus-rule.yaml. */
export const EVENT_RELAY_METRICS = {
  lagEntries: 'vm_tenant_event_relay_lag_entries',
  lagSeconds: 'vm_tenant_event_relay_lag_seconds',
} as const;

/** Counted up to this many: a relay this far behind is far behind, and the count stays cheap. */
const LAG_COUNT_CAP = 100_000;

export interface EventRelayLag {
  /** Ledger entries past the relay's cursor (not published yet), up to LAG_COUNT_CAP. */
  entries: number;
  /** How long the oldest of them has waited (0 when none waits). */
  seconds: number;
}

/** What the relay of `subjectPrefix` has still to publish, from its cursor in Postgres (whichever worker leads). */
export async function readEventRelayLag(db: Kysely<Database>, subjectPrefix: string): Promise<EventRelayLag> {
  const { rows } = await sql<{ entries: string; oldest: Date | null }>`
    with cursor as (select coalesce((select last_seq from event_relay_cursor where name = ${relayCursorName(subjectPrefix)}), 0) as last_seq),
         waiting as (select seq, occurred_at from audit_events where seq > (select last_seq from cursor) order by seq limit ${LAG_COUNT_CAP})
    select count(*)::text as entries, min(occurred_at) as oldest from waiting`.execute(db);
  const row = rows[0];
  const oldest = row?.oldest ? new Date(row.oldest).getTime() : null;
  return { entries: Number(row?.entries ?? 0), seconds: oldest === null ? 0 : Math.max(0, (Date.now() - oldest) / 1000) };
}

/**
 * The worker's event relay gauges, read from Postgres when Prometheus scrapes (one query serves
 * both): every worker reports the same truth, whichever leads. The alert: events waiting for more
 * than a minute (a stalled relay: NATS refusing, a full stream with NATS_STREAM_DISCARD=new).
 */
export function registerEventRelayMetrics(registry: Registry, lag: () => Promise<EventRelayLag>): void {
  const read = oncePerScrape(lag);
  scrapeTimeGauge(
    registry,
    { name: EVENT_RELAY_METRICS.lagEntries, help: `Ledger entries the event relay has not published yet (counted up to ${LAG_COUNT_CAP})` },
    read,
    (l) => [[{}, l.entries]],
  );
  scrapeTimeGauge(
    registry,
    { name: EVENT_RELAY_METRICS.lagSeconds, help: 'Seconds the oldest unpublished ledger entry has waited for the event relay (0 when none waits)' },
    read,
    (l) => [[{}, l.seconds]],
  );
}
