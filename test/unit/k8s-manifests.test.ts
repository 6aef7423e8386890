import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { generateToken } from '../../src/auth/token-format';
import { loadConfig } from '../../src/config/config';
import { LEDGER_CHECKPOINT_METRICS } from '../../src/metrics/ledger-checkpoint-metrics';
import { renderKustomization, type Manifest } from '../helpers/kustomize-render';
import { deploymentNatsUsers } from '../helpers/nats-users-conf';

/**
 * deploy/k8s: the overlays rendered (test/helpers/kustomize-render.ts, checked against
 * `kubectl kustomize` where kubectl is installed), validated offline against the Kubernetes
 * schemas (kubernetes-validate from PyPI, installed by scripts/ensure-kubernetes-validate.sh),
 * and their promises: probes, resources, non-root and read-only, the NetworkPolicy, the Secrets.
 */
const ROOT = path.resolve(__dirname, '../..');
const K8S = path.join(ROOT, 'deploy/k8s');
const OVERLAYS = ['production', 'staging'];
/** The oldest Kubernetes minor the manifests are meant for (docs/deploy.md). */
const KUBERNETES_VERSION = '1.30.0';
const API_PORT = 9221;

jest.setTimeout(120_000);

const validator = execFileSync('bash', [path.join(ROOT, 'scripts/ensure-kubernetes-validate.sh')], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-k8s-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function validate(manifests: Manifest[], name: string): { status: number | null; output: string } {
  const file = path.join(tmp, `${name}.yaml`);
  writeFileSync(file, manifests.map((manifest) => stringify(manifest)).join('---\n'));
  const run = spawnSync(validator, ['--strict', '--quiet', '-k', KUBERNETES_VERSION, file], { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

const key = (m: Manifest) => `${m.kind}/${m.metadata.namespace ?? ''}/${m.metadata.name}`;
const byKey = (manifests: Manifest[]) => Object.fromEntries(manifests.map((m) => [key(m), m]));

const rendered = Object.fromEntries(OVERLAYS.map((overlay) => [overlay, renderKustomization(path.join(K8S, 'overlays', overlay))]));
const production = rendered.production!;
const find = (kind: string, name: string) => production.find((m) => m.kind === kind && m.metadata.name === name);
/** The generated ConfigMap, named vm-tenant-config-<content hash>. */
const configMap = () => production.find((m) => m.kind === 'ConfigMap' && /^vm-tenant-config-[a-z0-9]{10}$/.test(m.metadata.name));
const podTemplates = production.filter((m) => m.spec?.template?.spec).map((m) => [`${m.kind}/${m.metadata.name}`, m.spec.template] as const);
const exampleSecrets = parseAllDocuments(readFileSync(path.join(K8S, 'examples/secrets.example.yaml'), 'utf8')).map((d) => d.toJS() as Manifest);

function allContainers(spec: any): any[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

function labelsMatch(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  return Object.entries(selector ?? {}).every(([name, value]) => labels[name] === value);
}

describe('deploy/k8s rendering and schema validation', () => {
  test.each(OVERLAYS)('when validating the %s overlay against the Kubernetes schemas (strict), then every resource passes', (overlay) => {
    const manifests = rendered[overlay]!;
    expect(manifests.length).toBeGreaterThanOrEqual(10);
    expect(validate(manifests, overlay)).toEqual({ status: 0, output: '' });
  });

  test('when validating the example Secrets, then they pass too', () => {
    expect(validate(exampleSecrets, 'secrets')).toEqual({ status: 0, output: '' });
  });

  test('when a manifest has a field Kubernetes does not know, then the validation rejects it (the check can fail)', () => {
    const broken = structuredClone(production);
    broken.find((m) => m.kind === 'Deployment')!.spec.template.spec.containers[0].readinesProbe = { httpGet: { path: '/readyz', port: 'http' } };
    const result = validate(broken, 'broken');
    expect(result.status).not.toBe(0);
    expect(result.output).toContain('readinesProbe');
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  (kubectl ? test.each(OVERLAYS) : test.skip.each(OVERLAYS))(
    'when kubectl is installed, then it renders the %s overlay exactly as the test renderer does',
    (overlay) => {
      const output = execFileSync('kubectl', ['kustomize', path.join(K8S, 'overlays', overlay)], { encoding: 'utf8' });
      const theirs = parseAllDocuments(output).map((d) => d.toJS() as Manifest);
      expect(byKey(rendered[overlay]!)).toEqual(byKey(theirs));
    },
  );
});

describe('deploy/k8s production overlay', () => {
  test('when reading the API Deployment, then readiness is /readyz and liveness /healthz on the API port', () => {
    const container = find('Deployment', 'vm-tenant-api')!.spec.template.spec.containers[0];
    const port = (name: string | number) => (typeof name === 'number' ? name : container.ports.find((p: any) => p.name === name)?.containerPort);
    expect({ path: container.readinessProbe.httpGet.path, port: port(container.readinessProbe.httpGet.port) }).toEqual({ path: '/readyz', port: API_PORT });
    expect({ path: container.livenessProbe.httpGet.path, port: port(container.livenessProbe.httpGet.port) }).toEqual({ path: '/healthz', port: API_PORT });
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: 'PORT', value: String(API_PORT) },
        { name: 'HOST', value: '0.0.0.0' },
      ]),
    );
  });

  test.each(podTemplates)(
    'when reading the pods of %s, then they run as non-root on a read-only root filesystem, with resource requests',
    (_name, template) => {
      const spec = template.spec;
      expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: expect.any(Number) });
      expect(spec.securityContext.runAsUser).toBeGreaterThan(0);
      expect(spec.automountServiceAccountToken).toBe(false);
      for (const container of allContainers(spec)) {
        expect({ container: container.name, securityContext: container.securityContext }).toEqual({
          container: container.name,
          securityContext: expect.objectContaining({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } }),
        });
        expect({ container: container.name, requests: container.resources?.requests }).toEqual({
          container: container.name,
          requests: { cpu: expect.any(String), memory: expect.any(String) },
        });
        expect(container.image).toBe('registry.example.com/vm-tenant:0.1.0');
      }
    },
  );

  test.each(podTemplates)('when %s runs the app, then it is plain node over the build output', (_name, template) => {
    const app = template.spec.containers[0];
    expect(app.command).toEqual(['node', expect.stringMatching(/^dist\/[\w/-]+\.js$/)]);
  });

  test('when scaling the API, then the HPA drives its Deployment and the PDB keeps pods up without blocking drains', () => {
    const hpa = find('HorizontalPodAutoscaler', 'vm-tenant-api')!;
    const pdb = find('PodDisruptionBudget', 'vm-tenant-api')!;
    const api = find('Deployment', 'vm-tenant-api')!;
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'vm-tenant-api' });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(labelsMatch(pdb.spec.selector.matchLabels, api.spec.template.metadata.labels)).toBe(true);
    expect(pdb.spec.minAvailable).toBeLessThan(hpa.spec.minReplicas);
    const service = find('Service', 'vm-tenant-api')!;
    expect(labelsMatch(service.spec.selector, api.spec.template.metadata.labels)).toBe(true);
    expect(service.spec.ports).toEqual([{ name: 'http', port: API_PORT, targetPort: 'http' }]);
    expect(find('StatefulSet', 'vm-tenant-worker')?.spec.replicas).toBeGreaterThanOrEqual(2);
  });

  test.each(podTemplates)(
    'when traffic comes to the pods of %s, then the NetworkPolicies admit only TCP to the API port of the API pods',
    (_name, template) => {
      const policies = production.filter((m) => m.kind === 'NetworkPolicy' && labelsMatch(m.spec.podSelector.matchLabels, template.metadata.labels));
      // Some policy selects every pod for Ingress, so that anything not admitted is denied.
      expect(policies.some((p) => p.spec.policyTypes.includes('Ingress'))).toBe(true);
      const admitted = policies.flatMap((p) => (p.spec.ingress ?? []).flatMap((rule: any) => rule.ports ?? [{ port: 'any' }]));
      const isApi = template.metadata.labels['app.kubernetes.io/name'] === 'vm-tenant-api';
      expect(admitted).toEqual(isApi ? [{ protocol: 'TCP', port: API_PORT }] : []);
    },
  );

  test('when a workload needs a credential, then it comes from a Secret of the example, never from a literal or the ConfigMap', () => {
    const config = configMap()!;
    expect(Object.keys(config.data).filter((name) => /URL$|TOKEN|PASSWORD|KEY/.test(name) && !['TEMPORAL_ADDRESS', 'FLEET_URL'].includes(name))).toEqual([]);
    const secretKeys = new Set(exampleSecrets.flatMap((secret) => Object.keys(secret.stringData ?? {}).map((k) => `${secret.metadata.name}/${k}`)));
    const workloadsUsing = new Map<string, string[]>();
    for (const [name, template] of podTemplates) {
      for (const container of allContainers(template.spec)) {
        for (const variable of container.env ?? []) {
          if (/(DATABASE_URL|NATS_URL|TOKEN|PASSWORD)$/.test(variable.name)) {
            expect({ name, variable: variable.name, value: variable.value }).toEqual({ name, variable: variable.name, value: undefined });
            const ref = variable.valueFrom.secretKeyRef;
            expect(secretKeys.has(`${ref.name}/${ref.key}`)).toBe(true);
            workloadsUsing.set(ref.name, [...(workloadsUsing.get(ref.name) ?? []), name]);
          }
        }
      }
      for (const volume of template.spec.volumes ?? []) {
        if (volume.secret) {
          for (const item of volume.secret.items ?? []) expect(secretKeys.has(`${volume.secret.secretName}/${item.key}`)).toBe(true);
        }
      }
    }
    // The owner login reaches the migrations Job only.
    expect(workloadsUsing.get('vm-tenant-migration')).toEqual(['Job/vm-tenant-migrate-0.1.0']);
    expect(workloadsUsing.get('vm-tenant-admin-token')).toEqual(['Deployment/vm-tenant-api']);
  });

  test('when the checkpoint key is mounted, then the worker gets the private key and the API only the public half', () => {
    const secretItems = (name: string) =>
      ((find('Deployment', name) ?? find('StatefulSet', name))!.spec.template.spec.volumes as any[])
        .filter((v) => v.secret?.secretName === 'vm-tenant-checkpoint-key')
        .flatMap((v) => v.secret.items.map((i: any) => i.key));
    expect(secretItems('vm-tenant-worker')).toEqual(['ledger-checkpoint-key.pem']);
    expect(secretItems('vm-tenant-api')).toEqual(['ledger-checkpoint-key.pub.pem']);
    const api = find('Deployment', 'vm-tenant-api')!.spec.template.spec.containers[0];
    const mount = api.volumeMounts.find((m: any) => m.name === 'checkpoint-public-key');
    const file = api.env.find((e: any) => e.name === 'LEDGER_CHECKPOINT_PUBLIC_KEY_FILE').value;
    expect(file).toBe(`${mount.mountPath}/ledger-checkpoint-key.pub.pem`);
  });

  test('when the API and the worker read their environment, then loadConfig accepts it and reads every variable', () => {
    const config = configMap()!.data as Record<string, string>;
    const samples: Record<string, string> = {
      DATABASE_URL: 'postgres://vm_tenant_app:pw@db:5432/vm_tenant',
      NATS_URL: 'nats://vm_tenant_worker:pw@nats:4222',
      ADMIN_TOKEN: generateToken(),
    };
    for (const name of ['vm-tenant-api', 'vm-tenant-worker']) {
      const container = (find('Deployment', name) ?? find('StatefulSet', name))!.spec.template.spec.containers[0];
      const env: Record<string, string> = { ...config };
      for (const variable of container.env) env[variable.name] = variable.value ?? samples[variable.name];
      const read = new Set<string>();
      expect(() => loadConfig(new Proxy(env, { get: (target, k: string) => (read.add(k), target[k]) }))).not.toThrow();
      expect({ name, unread: Object.keys(env).filter((k) => !read.has(k) && k !== 'NODE_ENV') }).toEqual({ name, unread: [] });
    }
  });

  test("when the API and the worker log in to NATS, then each reads its own Secret, whose example names its own user of the NATS users file, and neither reads the other's", () => {
    const natsSecret = (name: string) => {
      const refs = ((find('Deployment', name) ?? find('StatefulSet', name))!.spec.template.spec.containers[0].env as any[])
        .filter((v) => v.name === 'NATS_URL')
        .map((v) => v.valueFrom.secretKeyRef);
      expect(refs).toHaveLength(1);
      return refs[0] as { name: string; key: string };
    };
    const exampleUser = (ref: { name: string; key: string }) =>
      new URL(exampleSecrets.find((secret) => secret.metadata.name === ref.name)!.stringData[ref.key]).username;
    const api = natsSecret('vm-tenant-api');
    const worker = natsSecret('vm-tenant-worker');
    expect(api.name).not.toBe(worker.name);
    expect({ api: exampleUser(api), worker: exampleUser(worker) }).toEqual({ api: 'vm_tenant_api', worker: 'vm_tenant_worker' });
    // The users (and their rights, checked on a real server by nats-credentials.test.ts) are the file's.
    expect(Object.keys(deploymentNatsUsers())).toEqual(expect.arrayContaining(['vm_tenant_api', 'vm_tenant_worker']));
    // No workload reads the other's login, whatever the variable.
    for (const [name, template] of podTemplates) {
      const secrets = allContainers(template.spec).flatMap((c) => (c.env ?? []).map((v: any) => v.valueFrom?.secretKeyRef?.name).filter(Boolean));
      if (name !== 'Deployment/vm-tenant-api') expect({ name, secrets }).toEqual({ name, secrets: expect.not.arrayContaining([api.name]) });
      if (name !== 'StatefulSet/vm-tenant-worker') expect({ name, secrets }).toEqual({ name, secrets: expect.not.arrayContaining([worker.name]) });
    }
  });
});

describe('deploy/k8s/monitoring (Prometheus Operator)', () => {
  const monitoring = renderKustomization(path.join(K8S, 'monitoring'));
  const rule = monitoring.find((m) => m.kind === 'PrometheusRule')!;
  const alerts = (rule.spec.groups as any[]).flatMap((group) => group.rules as any[]);
  const stale = alerts.find((alert) => alert.alert === 'LedgerCheckpointsStale');

  test("when the ledger checkpoints fall behind, then the alert fires on the worker's gauges: older than three signing periods with entries waiting", () => {
    expect(rule.apiVersion).toBe('monitoring.coreos.com/v1');
    const { age, period, unsigned } = LEDGER_CHECKPOINT_METRICS;
    expect(stale).toMatchObject({
      expr: `${age} > 3 * ${period} and ${unsigned} > 0`,
      labels: { severity: 'critical' },
      annotations: { summary: expect.any(String), description: expect.any(String) },
    });
    expect(stale.for).toMatch(/^\d+[smh]$/);
  });

  // Every metric the rules name is one the API or the worker registers: test/deploy/alert-rules.test.ts (with promtool).

  test('when Prometheus scrapes, then the PodMonitor selects the worker pods on their metrics port', () => {
    const monitor = monitoring.find((m) => m.kind === 'PodMonitor' && m.metadata.name === 'vm-tenant-worker')!;
    const workerTemplate = find('StatefulSet', 'vm-tenant-worker')!.spec.template;
    expect(labelsMatch(monitor.spec.selector.matchLabels, workerTemplate.metadata.labels)).toBe(true);
    const port = workerTemplate.spec.containers[0].ports.find((p: any) => p.name === monitor.spec.podMetricsEndpoints[0].port);
    expect(port?.containerPort).toBe(loadConfig({}).workerMetricsPort);
    expect(monitor.spec.podMetricsEndpoints[0].path).toBe('/metrics');
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  (kubectl ? test : test.skip)('when kubectl is installed, then it renders the monitoring kustomization exactly as the test renderer does', () => {
    const output = execFileSync('kubectl', ['kustomize', path.join(K8S, 'monitoring')], { encoding: 'utf8' });
    expect(byKey(monitoring)).toEqual(byKey(parseAllDocuments(output).map((d) => d.toJS() as Manifest)));
  });
});
