import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { Registry } from 'prom-client';
import { parse, stringify } from 'yaml';
import type { Database } from '../../src/db/tables';
import { createApiMetrics } from '../../src/metrics/api-metrics';
import { registerEventRelayMetrics } from '../../src/metrics/event-relay-metrics';
import { registerLedgerCheckpointMetrics } from '../../src/metrics/ledger-checkpoint-metrics';
import { registerVmSettlementMetrics } from '../../src/metrics/vm-settlement-metrics';
import { createWorkerMetrics } from '../../src/metrics/worker-metrics';

/**
 * The alert rules and the Grafana dashboard an operator loads (issue 22): the rules pass
 * `promtool check rules`, fire and stay quiet as the cases of alert-rules.test.yaml say
 * (`promtool test rules`), the dashboard's queries are valid PromQL, and every metric either names
 * is one the API or the worker registers. promtool is Debian's (scripts/ensure-promtool.sh).
 */
const ROOT = path.resolve(__dirname, '../..');
const MONITORING = path.join(ROOT, 'deploy/k8s/monitoring');

jest.setTimeout(300_000);

const promtool = execFileSync('bash', [path.join(ROOT, 'scripts/ensure-promtool.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-alerts-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const rule = parse(readFileSync(path.join(MONITORING, 'prometheus-rule.yaml'), 'utf8')) as {
  spec: { groups: { name: string; rules: { alert?: string; expr: string }[] }[] };
};
const dashboard = JSON.parse(readFileSync(path.join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
  schemaVersion: number;
  uid: string;
};
const dashboardQueries = dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));

/** Writes a rules file (the PrometheusRule's spec, as the Operator hands it to Prometheus) and the test cases beside it, into `dir`. */
function writeRules(dir: string, spec: unknown): string {
  writeFileSync(path.join(dir, 'vm-tenant.rules.yml'), stringify(spec));
  copyFileSync(path.join(MONITORING, 'alert-rules.test.yaml'), path.join(dir, 'alert-rules.test.yaml'));
  return dir;
}

function promtoolRun(args: string[], cwd: string): { status: number | null; output: string } {
  const run = spawnSync(promtool, args, { cwd, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Every metric name our code registers, with the series names Prometheus derives from histograms. */
function exportedNames(): Set<string> {
  const api = createApiMetrics({} as Kysely<Database>);
  const worker = createWorkerMetrics();
  const registry = worker.registry;
  registerLedgerCheckpointMetrics(registry, 10, async () => ({
    freshness: { signed_at: null, age_seconds: 0, unsigned_entries: 0, stale: false },
    starved_seconds: 0,
  }));
  registerEventRelayMetrics(registry, async () => ({ entries: 0, seconds: 0 }));
  registerVmSettlementMetrics(registry, 900, async () => []);
  const names = new Set<string>();
  for (const metric of [...Registry.merge([api.registry, registry]).getMetricsAsArray()]) {
    const { name, type } = metric as unknown as { name: string; type: string };
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`);
  }
  return names;
}

const namedIn = (expr: string) => [...expr.matchAll(/\bvm_tenant_[a-z_]+/g)].map((m) => m[0]);

describe('the alert rules', () => {
  test('when promtool checks the rules, then they are valid and include every alert the operator guide lists', () => {
    const dir = writeRules(mkdtempSync(path.join(tmp, 'check-')), rule.spec);
    const result = promtoolRun(['check', 'rules', 'vm-tenant.rules.yml'], dir);
    expect(result).toEqual({ status: 0, output: expect.stringMatching(/SUCCESS: \d+ rules found/) });
    const alerts = rule.spec.groups.flatMap((group) => group.rules.map((r) => r.alert));
    expect(alerts).toEqual(
      expect.arrayContaining([
        'LedgerCheckpointsStale',
        'LedgerCheckpointMetricsMissing',
        'EventRelayLagging',
        'VmRequestsUnsettled',
        'VmBootsPastDeadline',
        'ApiServerErrors',
        'TemporalCallsFailing',
        'RateLimitRefusalsHigh',
      ]),
    );
  });

  test('when promtool runs the test cases, then every alert fires on its situation and stays quiet on its neighbour', () => {
    const dir = writeRules(mkdtempSync(path.join(tmp, 'test-')), rule.spec);
    expect(promtoolRun(['test', 'rules', 'alert-rules.test.yaml'], dir)).toEqual({ status: 0, output: expect.stringContaining('SUCCESS') });
  });

  test('when a threshold is changed, then the test cases fail (they can)', () => {
    const broken = structuredClone(rule.spec);
    const lagging = broken.groups.flatMap((group) => group.rules).find((r) => r.alert === 'EventRelayLagging')!;
    lagging.expr = lagging.expr.replace('> 60', '> 600');
    const dir = writeRules(mkdtempSync(path.join(tmp, 'broken-')), broken);
    const result = promtoolRun(['test', 'rules', 'alert-rules.test.yaml'], dir);
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('alertname: EventRelayLagging');
  });

  test('when the rules and the dashboard name metrics, then the API or the worker registers every one of them', () => {
    const exported = exportedNames();
    const named = [...rule.spec.groups.flatMap((group) => group.rules.flatMap((r) => namedIn(r.expr))), ...dashboardQueries.flatMap((q) => namedIn(q.expr))];
    expect(named.length).toBeGreaterThan(15);
    expect([...new Set(named)].filter((name) => !exported.has(name))).toEqual([]);
  });
});

describe('the Grafana dashboard', () => {
  test('when Grafana imports it, then it is a dashboard with a Prometheus datasource variable, and every panel queries through it', () => {
    expect(dashboard).toMatchObject({ uid: 'vm-tenant-overview', schemaVersion: expect.any(Number) });
    const panels = dashboard.panels.filter((panel) => panel.type !== 'row');
    expect(panels.length).toBeGreaterThanOrEqual(10);
    for (const panel of panels) expect({ panel: panel.title, targets: (panel.targets ?? []).length > 0 }).toEqual({ panel: panel.title, targets: true });
  });

  test('when its queries are read as PromQL, then promtool accepts every one', () => {
    const dir = mkdtempSync(path.join(tmp, 'dashboard-'));
    // Each query as a recording rule: promtool check rules parses its expression.
    const spec = { groups: [{ name: 'dashboard', rules: dashboardQueries.map((q, i) => ({ record: `vm_tenant_dashboard:q${i}`, expr: q.expr })) }] };
    writeFileSync(path.join(dir, 'dashboard.rules.yml'), stringify(spec));
    expect(promtoolRun(['check', 'rules', 'dashboard.rules.yml'], dir)).toEqual({
      status: 0,
      output: expect.stringContaining(`SUCCESS: ${dashboardQueries.length} rules found`),
    });
  });
});
