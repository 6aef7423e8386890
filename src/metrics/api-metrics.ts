import type { Kysely } from 'kysely';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Database } from '../db/tables';

export interface ApiMetrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  admissions: Counter<'outcome'>;
  /** Requests answered 503 dependency_unavailable, by the dependency that failed them (postgres, temporal). */
  dependencyUnavailable: Counter<'dependency'>;
  /** Problem answers by their code (rate_limited, too_many_failed_authentications, quota_exceeded, ...). */
  problems: Counter<'code'>;
}

/**
 * The API's Prometheus metrics. Quota in use per tenant is read from Postgres at scrape time, so
 * every API process reports the same truth whichever one Prometheus scrapes.
 */
export function createApiMetrics(db: Kysely<Database>): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vm_tenant_api_' });
  const httpRequests = new Counter({
    name: 'vm_tenant_http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'vm_tenant_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const admissions = new Counter({
    name: 'vm_tenant_admissions_total',
    help: 'VM spawn admissions by outcome (accepted, quota_exceeded, rate_limited, ...)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const dependencyUnavailable = new Counter({
    name: 'vm_tenant_dependency_unavailable_total',
    help: 'Requests answered 503 dependency_unavailable, by the dependency (postgres, temporal) that was down, hung or past its deadline',
    labelNames: ['dependency'] as const,
    registers: [registry],
  });
  const problems = new Counter({
    name: 'vm_tenant_http_problems_total',
    help: 'Problem answers (application/problem+json) by their code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  // One query per scrape serves all four quota gauges: each gauge's collect() awaits the same
  // promise (the registry collects its metrics concurrently).
  const quotaQuery = () =>
    db
      .selectFrom('tenants as t')
      .leftJoin('vms as v', (join) => join.onRef('v.tenant_id', '=', 't.tenant_id').on('v.status', 'in', ['provisioning', 'running', 'destroying']))
      .select((eb) => [
        't.tenant_id',
        't.max_vms',
        't.storage_quota_gb',
        eb.fn.count<string>('v.vm_id').as('vms'),
        eb.fn.coalesce(eb.fn.sum<string>('v.storage_gb'), eb.lit(0)).as('storage'),
      ])
      .where('t.deleted_at', 'is', null)
      .groupBy(['t.tenant_id', 't.max_vms', 't.storage_quota_gb'])
      .execute();
  let scrape: ReturnType<typeof quotaQuery> | null = null;
  const quotaRows = () => {
    scrape ??= quotaQuery().finally(() => setTimeout(() => (scrape = null), 100).unref());
    return scrape;
  };
  const quotaGauge = (name: string, help: string, value: (row: Awaited<ReturnType<typeof quotaQuery>>[number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['tenant_id'] as const,
      registers: [registry],
      async collect() {
        const rows = await quotaRows();
        this.reset();
        for (const row of rows) this.set({ tenant_id: row.tenant_id }, value(row));
      },
    });
  quotaGauge('vm_tenant_quota_vms_in_use', 'VMs holding quota per tenant', (row) => Number(row.vms));
  quotaGauge('vm_tenant_quota_storage_gb_in_use', 'Storage (GB) holding quota per tenant', (row) => Number(row.storage));
  quotaGauge('vm_tenant_quota_max_vms', 'max_vms per tenant', (row) => row.max_vms);
  quotaGauge('vm_tenant_quota_storage_gb', 'storage_quota_gb per tenant', (row) => row.storage_quota_gb);
  return { registry, httpRequests, httpDuration, admissions, dependencyUnavailable, problems };
}
