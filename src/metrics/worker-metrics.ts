import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WorkerMetrics {
  registry: Registry;
  fleetCalls: Histogram<'operation' | 'outcome'>;
  fleetErrors: Counter<'operation' | 'kind'>;
  ledgerAppend: Histogram<'event_type'>;
  natsPublished: Counter<string>;
  natsPublishRetries: Counter<string>;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'vm_tenant_worker_' });
  const buckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    fleetCalls: new Histogram({
      name: 'vm_tenant_fleet_call_duration_seconds',
      help: 'Fleet controller call latency',
      labelNames: ['operation', 'outcome'] as const,
      buckets,
      registers: [registry],
    }),
    fleetErrors: new Counter({
      name: 'vm_tenant_fleet_call_errors_total',
      help: 'Fleet controller call errors by kind (rejected, unavailable)',
      labelNames: ['operation', 'kind'] as const,
      registers: [registry],
    }),
    ledgerAppend: new Histogram({
      name: 'vm_tenant_ledger_append_duration_seconds',
      help: 'Ledger append latency (with its state change, in one transaction)',
      labelNames: ['event_type'] as const,
      buckets,
      registers: [registry],
    }),
    natsPublished: new Counter({ name: 'vm_tenant_nats_events_published_total', help: 'Ledger entries published to NATS', registers: [registry] }),
    natsPublishRetries: new Counter({
      name: 'vm_tenant_nats_publish_retries_total',
      help: 'Event relay retries after a NATS or Postgres failure',
      registers: [registry],
    }),
  };
}
