import { Gauge, type Registry } from 'prom-client';
import type { SignerLiveness } from '../ledger/checkpoint-freshness';
import { oncePerScrape, scrapeTimeGauge } from './scrape-time-gauge';

/** Metric names, also used by the alert rule in deploy/k8s/monitoring/prometheus-rule.yaml. */
export const LEDGER_CHECKPOINT_METRICS = {
  age: 'vm_tenant_ledger_checkpoint_age_seconds',
  unsigned: 'vm_tenant_ledger_unsigned_entries',
  period: 'vm_tenant_ledger_checkpoint_period_seconds',
  starved: 'vm_tenant_ledger_checkpoint_starved_seconds',
} as const;

/**
 * The worker's ledger checkpoint gauges, read from the signer when Prometheus scrapes (one status
 * read serves all four). The alert: the newest checkpoint older than three signing periods while
 * entries wait for one (`age > 3 * period and unsigned > 0`); an idle ledger has an old checkpoint
 * and nothing waiting, which is fine.
 */
export function registerLedgerCheckpointMetrics(registry: Registry, periodSeconds: number, liveness: () => Promise<SignerLiveness>): void {
  // A worker built again on the same registry (tests) replaces its gauges rather than failing.
  registry.removeSingleMetric(LEDGER_CHECKPOINT_METRICS.period);
  const read = oncePerScrape(liveness);
  const gauge = (name: string, help: string, value: (status: SignerLiveness) => number) =>
    scrapeTimeGauge(registry, { name, help }, read, (status) => [[{}, value(status)]]);
  gauge(
    LEDGER_CHECKPOINT_METRICS.age,
    'Seconds since the newest ledger checkpoint this worker knows was signed (since the signer started, before the first)',
    (s) => s.freshness.age_seconds,
  );
  gauge(
    LEDGER_CHECKPOINT_METRICS.unsigned,
    'Committed ledger entries that no checkpoint covers yet (counted up to 100000)',
    (s) => s.freshness.unsigned_entries,
  );
  gauge(
    LEDGER_CHECKPOINT_METRICS.starved,
    'Seconds the commit horizon has been out of reach of the checkpoint signer (0 when it is not)',
    (s) => s.starved_seconds,
  );
  new Gauge({ name: LEDGER_CHECKPOINT_METRICS.period, help: 'The signing period (LEDGER_CHECKPOINT_EVERY_SECONDS)', registers: [registry] }).set(periodSeconds);
}
