import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config';
import { renderKustomization, type Manifest } from '../helpers/kustomize-render';

/**
 * What an operator meets on the first `kubectl apply -k` and every one after it (issue 22), checked
 * on the rendered overlays (test/helpers/kustomize-render.ts; test/unit/k8s-manifests.test.ts
 * compares it with `kubectl kustomize`): the HPA alone sets the API's replica count, a new release
 * is a new migrations Job and its pods wait for the schema, probes that let a pod wait for its
 * dependencies, drained rollouts, spread and budgeted workers, a configuration change that rolls pods.
 */
const ROOT = path.resolve(__dirname, '../..');
const K8S = path.join(ROOT, 'deploy/k8s');
const OVERLAYS = ['production', 'staging'];
const API_DRAIN_MS = 15_000;

const rendered = Object.fromEntries(OVERLAYS.map((overlay) => [overlay, renderKustomization(path.join(K8S, 'overlays', overlay))]));
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-k8s-rollout-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Renders a copy of deploy/k8s after `change` edited it (a release, a configuration change). */
function renderChanged(overlay: string, change: (dir: string) => void): Manifest[] {
  const copy = mkdtempSync(path.join(tmp, 'k8s-'));
  cpSync(K8S, copy, { recursive: true });
  change(copy);
  return renderKustomization(path.join(copy, 'overlays', overlay));
}

/** The API Deployment and the worker StatefulSet: every workload that runs the service image. */
const deployments = (manifests: Manifest[]) => manifests.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
const workload = (manifests: Manifest[], name: string) => deployments(manifests).find((m) => m.metadata.name === name)!;
const named = (manifests: Manifest[], kind: string, name: string) => manifests.find((m) => m.kind === kind && m.metadata.name === name)!;
const jobs = (manifests: Manifest[]) => manifests.filter((m) => m.kind === 'Job');
const imageTag = (image: string) => image.slice(image.lastIndexOf(':') + 1);
const labelsMatch = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.each(OVERLAYS)('the %s overlay', (overlay) => {
  const manifests = rendered[overlay]!;

  test('when an HPA scales a Deployment, then the Deployment sets no replica count of its own (apply would reset the scaled-up count)', () => {
    const hpas = manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler');
    expect(hpas.length).toBeGreaterThan(0);
    for (const hpa of hpas) {
      const target = named(manifests, hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name);
      expect({ deployment: target.metadata.name, replicas: target.spec.replicas }).toEqual({ deployment: target.metadata.name, replicas: undefined });
    }
  });

  test('when a release is applied, then its migrations Job has a fixed name carrying the image tag, so a new tag is a new Job and the same tag the same one', () => {
    const [job] = jobs(manifests);
    expect(jobs(manifests)).toHaveLength(1);
    expect((job!.metadata as Record<string, unknown>).generateName).toBeUndefined(); // kubectl apply refuses generateName
    const tag = imageTag(job!.spec.template.spec.containers[0].image);
    expect(job!.metadata.name).toBe(`vm-tenant-migrate-${tag}`);
    // Job names are DNS labels (the job-name label of its pods): at most 63 characters.
    expect(job!.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/);
    const released = renderChanged(overlay, (dir) => {
      const file = path.join(dir, 'overlays', overlay, 'kustomization.yaml');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/newTag: \S+/, 'newTag: 9.8.7'));
    });
    expect(jobs(released).map((m) => [m.metadata.name, m.spec.template.spec.containers[0].image])).toEqual([
      ['vm-tenant-migrate-9.8.7', expect.stringMatching(/:9\.8\.7$/)],
    ]);
    for (const deployment of deployments(released)) expect(deployment.spec.template.spec.containers[0].image).toMatch(/:9\.8\.7$/);
  });

  test('when a pod of a Deployment starts, then an init container of the same image first waits for the schema its image needs, with the service login, never the migration login', () => {
    const [job] = jobs(manifests);
    for (const deployment of deployments(manifests)) {
      const spec = deployment.spec.template.spec;
      const wait = (spec.initContainers ?? []).find((c: any) => c.name === 'wait-for-schema');
      expect({ deployment: deployment.metadata.name, command: wait?.command }).toEqual({
        deployment: deployment.metadata.name,
        command: ['node', 'dist/cli/migrate.js', '--wait'],
      });
      expect(wait.image).toBe(spec.containers[0].image);
      expect(wait.image).toBe(job!.spec.template.spec.containers[0].image);
      expect(wait.env).toEqual([{ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'vm-tenant-connections', key: 'DATABASE_URL' } } }]);
    }
  });

  test('when a pod waits for Postgres or Temporal at start, then a startup probe holds liveness off for minutes, and liveness asks the program, not a port', () => {
    for (const deployment of deployments(manifests)) {
      const container = deployment.spec.template.spec.containers[0];
      const port = (name: string) => container.ports.find((p: any) => p.name === name)?.containerPort;
      const { startupProbe, livenessProbe } = container;
      expect({ deployment: deployment.metadata.name, startup: startupProbe?.httpGet?.path, liveness: livenessProbe?.httpGet?.path }).toEqual({
        deployment: deployment.metadata.name,
        startup: '/healthz',
        liveness: '/healthz',
      });
      expect(startupProbe.periodSeconds * startupProbe.failureThreshold).toBeGreaterThanOrEqual(300);
      expect(livenessProbe.initialDelaySeconds ?? 0).toBe(0); // the startup probe covers the start
      const expected = deployment.metadata.name === 'vm-tenant-worker' ? loadConfig({}).workerMetricsPort : loadConfig({}).port;
      expect(port(livenessProbe.httpGet.port)).toBe(expected);
    }
  });

  test('when an API pod is stopped, then preStop holds it serving while its endpoint is withdrawn, and the grace period covers that and the drain', () => {
    const spec = named(manifests, 'Deployment', 'vm-tenant-api').spec.template.spec;
    const preStop = spec.containers[0].lifecycle?.preStop;
    expect(preStop?.sleep?.seconds).toBeGreaterThanOrEqual(5);
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(preStop.sleep.seconds + API_DRAIN_MS / 1000);
  });

  test.each(['vm-tenant-api', 'vm-tenant-worker'])('when nodes are drained, then a PodDisruptionBudget covers %s and its pods spread over nodes', (name) => {
    const template = workload(manifests, name).spec.template;
    const budgets = manifests.filter((m) => m.kind === 'PodDisruptionBudget' && labelsMatch(m.spec.selector.matchLabels, template.metadata.labels));
    expect(budgets).toHaveLength(1);
    const spread = (template.spec.topologySpreadConstraints ?? []) as any[];
    const byHost = spread.find((c) => c.topologyKey === 'kubernetes.io/hostname');
    expect(byHost).toMatchObject({ maxSkew: 1 });
    expect(labelsMatch(byHost.labelSelector.matchLabels, template.metadata.labels)).toBe(true);
  });

  test("when a worker pod is replaced, then its DATA_DIR (the signer's record of its last checkpoint, and the key) is on its own persistent volume, not an emptyDir", () => {
    const worker = workload(manifests, 'vm-tenant-worker');
    expect(worker.kind).toBe('StatefulSet');
    const container = worker.spec.template.spec.containers[0];
    const dataDir = (container.env as any[]).find((v) => v.name === 'DATA_DIR')?.value;
    const mount = (container.volumeMounts as any[]).find((m) => m.mountPath === dataDir);
    expect(mount).toBeDefined();
    expect((worker.spec.template.spec.volumes as any[]).map((v) => v.name)).not.toContain(mount.name);
    expect((worker.spec.volumeClaimTemplates as any[]).map((c) => [c.metadata.name, c.spec.accessModes])).toEqual([[mount.name, ['ReadWriteOnce']]]);
    // A StatefulSet's pods get their names from a governing headless Service.
    const service = named(manifests, 'Service', worker.spec.serviceName);
    expect(service.spec.clusterIP).toBe('None');
    expect(labelsMatch(service.spec.selector, worker.spec.template.metadata.labels)).toBe(true);
  });

  test('when a configuration value changes, then the ConfigMap gets a new name and every pod template that reads it points at the new one (the pods roll)', () => {
    const referenced = (all: Manifest[]) =>
      deployments(all).map((d) => [d.metadata.name, d.spec.template.spec.containers[0].envFrom.map((s: any) => s.configMapRef.name)]);
    const before = referenced(manifests);
    const configMaps = manifests.filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name);
    expect(configMaps).toHaveLength(1);
    expect(before.every(([, names]) => JSON.stringify(names) === JSON.stringify(configMaps))).toBe(true);
    const changed = renderChanged(overlay, (dir) => {
      const file = path.join(dir, 'base', 'config.env');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/^FLEET_URL=.*$/m, 'FLEET_URL=http://fleet.other:9231'));
    });
    const after = referenced(changed);
    const [newName] = changed.filter((m) => m.kind === 'ConfigMap').map((m) => m.metadata.name);
    expect(newName).not.toBe(configMaps[0]);
    expect(after).toEqual(before.map(([deployment]) => [deployment, [newName]]));
  });
});
