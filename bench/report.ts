import type { AdmissionRun } from './admission';
import type { TenantSizeRun } from './tenant-size';

export interface SummaryRow {
  readonly metric: string;
  readonly value: string;
  readonly target: string;
  /** undefined when the row has no target. */
  readonly met: boolean | undefined;
}

export interface Headline {
  overshoot: number;
  /** VMs still provisioning or destroying 90 s after a load phase (the most seen after any). */
  unsettled_after_load: number;
  http_5xx: number;
  floor_p50_ms: number;
  floor_p99_ms: number;
  /** Update-with-start on a running workflow, the primitive the API calls. */
  floor_uws_p50_ms: number;
  floor_uws_p99_ms: number;
  admission_uws_p50_ratio: number;
  admission_uws_p99_ratio: number;
  /** Admissions/s over 50 tenants ÷ bare updates/s over 50 workflows at the same concurrency, the best concurrency. */
  throughput_ratio: number;
  /** CPU ms of every part (API, worker, Postgres backends, Temporal, fleet) per admitted spawn, provisioning included. */
  cpu_ms_per_spawn: number;
  /** CPU ms of the Temporal server and the floor's worker and client per bare update. */
  cpu_ms_per_floor_update: number;
  cpu_ratio: number;
  /** Bare Temporal updates/s over 50 workflows at the best concurrency: the ceiling for admissions. */
  floor_updates_per_s_50_workflows: number;
  admission_p50_ms: number;
  admission_p99_ms: number;
  admission_p50_ratio: number;
  admission_p99_ratio: number;
  admissions_per_s_1_tenant: number;
  admissions_per_s_50_tenants: number;
  to_running_alone_p50_ms: number;
  to_running_alone_p99_ms: number;
  to_running_p50_ms: number;
  to_running_p99_ms: number;
  spawns_to_running_per_s: number;
  actions_per_lifecycle: number;
  events_per_lifecycle: number;
  local_activities_per_admission: number;
  max_history_events: number;
  list_p50_ms_10k: number;
  get_p50_ms_10k: number;
  tenant_size: { small: TenantSizeRun; large: TenantSizeRun };
}

export function summaryRows(h: Headline): SummaryRow[] {
  const row = (metric: string, value: string, target = '', met?: boolean): SummaryRow => ({ metric, value, target, met });
  return [
    row('floor: Temporal update p50 / p99', `${h.floor_p50_ms} / ${h.floor_p99_ms} ms`),
    row('admission p50 / p99 (1 tenant, concurrency 1)', `${h.admission_p50_ms} / ${h.admission_p99_ms} ms`),
    row('admission p50 ÷ bare update p50', `${h.admission_p50_ratio}×`),
    row('admission p99 ÷ bare update p99', `${h.admission_p99_ratio}×`),
    row('floor: update-with-start p50 / p99', `${h.floor_uws_p50_ms} / ${h.floor_uws_p99_ms} ms`),
    row('admission p50 ÷ update-with-start p50', `${h.admission_uws_p50_ratio}×`, '≤ 1.5×', h.admission_uws_p50_ratio <= 1.5),
    row('admission p99 ÷ update-with-start p99', `${h.admission_uws_p99_ratio}×`, '≤ 3×', h.admission_uws_p99_ratio <= 3),
    row('admissions/s, 1 tenant (best concurrency)', `${h.admissions_per_s_1_tenant}`),
    row('floor: bare Temporal updates/s, 50 workflows (best concurrency)', `${h.floor_updates_per_s_50_workflows}`),
    row('admissions/s, 50 tenants (best concurrency)', `${h.admissions_per_s_50_tenants}`),
    row('admissions/s ÷ bare updates/s, same concurrency (best)', `${Math.round(h.throughput_ratio * 100)}%`, '≥ 60%', h.throughput_ratio >= 0.6),
    row('CPU ms per admitted spawn (all parts, to running) / per bare update', `${h.cpu_ms_per_spawn} / ${h.cpu_ms_per_floor_update} ms = ${h.cpu_ratio}×`, '≤ 3×', h.cpu_ratio <= 3),
    row('202 → running p50 / p99 (VM_RUNNING on NATS), concurrency 1', `${h.to_running_alone_p50_ms} / ${h.to_running_alone_p99_ms} ms`, 'p50 ≤ 100 ms', h.to_running_alone_p50_ms <= 100),
    row('202 → running p50 / p99 (VM_RUNNING on NATS), concurrency 16', `${h.to_running_p50_ms} / ${h.to_running_p99_ms} ms`, 'p50 ≤ 100 ms', h.to_running_p50_ms <= 100),
    row('spawns/s to running', `${h.spawns_to_running_per_s}`),
    row('billable actions per spawn+destroy', `${h.actions_per_lifecycle}`, '≤ 4', h.actions_per_lifecycle <= 4),
    row('history events per spawn+destroy', `${h.events_per_lifecycle}`),
    row('local activities (markers) per admission', `${h.local_activities_per_admission}`, '0', h.local_activities_per_admission === 0),
    row('max tenant workflow history', `${h.max_history_events} events`, '< 10,000', h.max_history_events < 10_000),
    row('GET /v1/vms p50, 10k VMs', `${h.list_p50_ms_10k} ms`, '< 5 ms', h.list_p50_ms_10k < 5),
    row('GET /v1/vms/:id p50, 10k VMs', `${h.get_p50_ms_10k} ms`),
    ...(['small', 'large'] as const).flatMap((size) => {
      const run = h.tenant_size[size];
      const held = run.vms_held.toLocaleString('en-US');
      return [
        row(`spawn p50 / p99, tenant holding ${held} VMs (first spawn after a rebuild)`, `${run.spawn.p50_ms} / ${run.spawn.p99_ms} ms (${run.rebuild_spawn_ms} ms)`),
        row(`workflow task p50 / p99, tenant holding ${held} VMs`, `${run.workflow_task.p50_ms} / ${run.workflow_task.p99_ms} ms`),
      ];
    }),
    row('largest payload, tenant holding 100,000 VMs', `${h.tenant_size.large.largest_payload_bytes} bytes`, '≤ 256 KiB', h.tenant_size.large.largest_payload_bytes <= 256 * 1024),
    row('quota overshoot', `${h.overshoot}`, '0', h.overshoot === 0),
    row('VMs not settled 90 s after a load phase', `${h.unsettled_after_load}`, '0', h.unsettled_after_load === 0),
    row('HTTP 5xx', `${h.http_5xx}`, '0', h.http_5xx === 0),
  ];
}

const mark = (met: boolean | undefined) => (met === undefined ? '' : met ? 'met' : 'MISSED');

export function markdownTable(rows: readonly SummaryRow[]): string {
  const lines = ['| metric | result | target | |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.metric} | ${r.value} | ${r.target} | ${mark(r.met)} |`);
  return lines.join('\n');
}

export function admissionTable(runs: readonly (AdmissionRun & { label: string })[]): string {
  const lines = ['| tenants | concurrency | p50 ms | p90 ms | p99 ms | decisions/s | 202 | 429 | other |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of runs) {
    const other = r.requests - (r.status_counts['202'] ?? 0) - (r.status_counts['429'] ?? 0);
    lines.push(
      `| ${r.tenants} | ${r.connections} | ${r.latency.p50_ms} | ${r.latency.p90_ms} | ${r.latency.p99_ms} | ${r.admissions_per_s} | ${r.status_counts['202'] ?? 0} | ${r.status_counts['429'] ?? 0} | ${other} |`,
    );
  }
  return lines.join('\n');
}
