import { sql, type Kysely } from 'kysely';
import { Gauge, type Registry } from 'prom-client';
import type { Database } from '../db/tables';
import { oncePerScrape, scrapeTimeGauge } from './scrape-time-gauge';

/** Metric names, also used by the alert rules in deploy/k8s/monitoring/prometheus-rule.yaml. */
export const VM_SETTLEMENT_METRICS = {
  unsettled: 'vm_tenant_vms_unsettled',
  oldest: 'vm_tenant_vms_unsettled_oldest_seconds',
  bootTimeout: 'vm_tenant_vm_boot_timeout_seconds',
} as const;

/** The statuses a VM passes through on its way to a final one (running, destroyed, failed, rejected). */
export const UNSETTLED_STATUSES = ['requested', 'provisioning', 'destroying'] as const;

export interface UnsettledVms {
  status: (typeof UNSETTLED_STATUSES)[number];
  count: number;
  /** Seconds since the oldest of them last changed. */
  oldestSeconds: number;
}

export async function readUnsettledVms(db: Kysely<Database>): Promise<UnsettledVms[]> {
  const { rows } = await sql<{ status: UnsettledVms['status']; count: string; oldest: string }>`
    select status, count(*)::text as count, extract(epoch from now() - min(updated_at))::text as oldest
      from vms where status in ('requested', 'provisioning', 'destroying') group by status`.execute(db);
  const found = new Map(rows.map((row) => [row.status, row]));
  return UNSETTLED_STATUSES.map((status) => ({
    status,
    count: Number(found.get(status)?.count ?? 0),
    oldestSeconds: Math.max(0, Number(found.get(status)?.oldest ?? 0)),
  }));
}

/**
 * VMs not yet settled, by status, read from Postgres when Prometheus scrapes: how many, and how long
 * the oldest has not moved. A request or destroy nobody decides (the admission resolver retries it
 * after ADMISSION_RESOLVE_AFTER_MS) or a boot past its deadline (VM_BOOT_TIMEOUT_MS, exported beside)
 * means a part of the protocol is stuck (docs/admission-protocol.md).
 */
export function registerVmSettlementMetrics(registry: Registry, bootTimeoutSeconds: number, read: () => Promise<UnsettledVms[]>): void {
  const once = oncePerScrape(read);
  const byStatus = (value: (row: UnsettledVms) => number) => (rows: UnsettledVms[]) =>
    rows.map((row): [Record<string, string>, number] => [{ status: row.status }, value(row)]);
  scrapeTimeGauge(
    registry,
    { name: VM_SETTLEMENT_METRICS.unsettled, help: 'VMs in a status on the way to a final one (requested, provisioning, destroying)', labelNames: ['status'] },
    once,
    byStatus((row) => row.count),
  );
  scrapeTimeGauge(
    registry,
    { name: VM_SETTLEMENT_METRICS.oldest, help: 'Seconds since the oldest VM in this status last changed (0 when there is none)', labelNames: ['status'] },
    once,
    byStatus((row) => row.oldestSeconds),
  );
  registry.removeSingleMetric(VM_SETTLEMENT_METRICS.bootTimeout);
  new Gauge({ name: VM_SETTLEMENT_METRICS.bootTimeout, help: 'VM_BOOT_TIMEOUT_MS in seconds: a VM provisioning longer is failed', registers: [registry] }).set(
    bootTimeoutSeconds,
  );
}
