/**
 * A small kustomize renderer for the subset deploy/k8s uses, so that the tests render the overlays
 * without a kustomize binary (none ships in an npm or PyPI package usable here). It supports
 * `resources` (files and directories with a kustomization.yaml), `namespace`, `labels` (pairs on
 * metadata.labels only, kustomize's default), `images`, `replicas` and `patches` given as JSON 6902
 * operation files with a kind/name target. Anything else in a kustomization is an error rather
 * than silently ignored. test/unit/k8s-manifests.test.ts compares its output with
 * `kubectl kustomize` where kubectl is installed.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type Manifest = Record<string, any> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> } };

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  replicas?: { name: string; count: number }[];
  patches?: { path: string; target: { kind: string; name: string } }[];
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'replicas', 'patches']);

type PatchOperation = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };

function pointer(pathText: string): string[] {
  if (!pathText.startsWith('/')) throw new Error(`JSON pointer must start with /: ${pathText}`);
  return pathText.slice(1).split('/').map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add, replace and remove (what the overlays use). */
function applyJsonPatch(document: Manifest, operations: PatchOperation[], where: string): void {
  for (const operation of operations) {
    const tokens = pointer(operation.path);
    const last = tokens.pop()!;
    let parent: any = document;
    for (const token of tokens) {
      parent = Array.isArray(parent) ? parent[Number(token)] : parent?.[token];
      if (parent === undefined) throw new Error(`${where}: ${operation.path} does not exist`);
    }
    const exists = Array.isArray(parent) ? Number(last) < parent.length : Object.hasOwn(parent, last);
    if (operation.op !== 'add' && !exists) throw new Error(`${where}: ${operation.op} ${operation.path}: no such member`);
    if (operation.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (Array.isArray(parent) && operation.op === 'add') {
      parent.splice(last === '-' ? parent.length : Number(last), 0, operation.value);
    } else if (operation.op === 'add' || operation.op === 'replace') {
      parent[last] = operation.value;
    } else {
      throw new Error(`${where}: unsupported patch op ${(operation as PatchOperation).op}`);
    }
  }
}

function readManifests(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((document) => document.toJS() as Manifest | null)
    .filter((manifest): manifest is Manifest => manifest !== null);
}

function podSpecsOf(manifest: Manifest): any[] {
  const template = manifest.spec?.template ?? manifest.spec?.jobTemplate?.spec?.template;
  return template?.spec ? [template.spec] : [];
}

function setImage(image: string, rule: { name: string; newName?: string; newTag?: string }): string | undefined {
  const match = /^([^:@]+(?::\d+\/[^:@]+)?)(?::([^@]+))?$/.exec(image);
  if (!match || match[1] !== rule.name) return undefined;
  const name = rule.newName ?? match[1];
  const tag = rule.newTag ?? match[2];
  return tag ? `${name}:${tag}` : name;
}

/** Renders the kustomization in `dir` (a directory holding kustomization.yaml) to its manifests. */
export function renderKustomization(dir: string): Manifest[] {
  const kustomization = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const unsupported = Object.keys(kustomization).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0) throw new Error(`${dir}/kustomization.yaml: not supported by this renderer: ${unsupported.join(', ')}`);

  const manifests: Manifest[] = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.resolve(dir, resource);
    manifests.push(...(statSync(target).isDirectory() ? renderKustomization(target) : readManifests(target)));
  }

  for (const patch of kustomization.patches ?? []) {
    const operations = parse(readFileSync(path.join(dir, patch.path), 'utf8')) as PatchOperation[];
    if (!Array.isArray(operations)) throw new Error(`${patch.path}: only JSON 6902 patches (a list of operations) are supported`);
    const targets = manifests.filter((m) => m.kind === patch.target.kind && m.metadata.name === patch.target.name);
    if (targets.length === 0) throw new Error(`${patch.path}: no ${patch.target.kind} ${patch.target.name}`);
    for (const manifest of targets) applyJsonPatch(manifest, operations, patch.path);
  }

  if (kustomization.namespace) {
    for (const manifest of manifests) {
      if (manifest.kind === 'Namespace') manifest.metadata.name = kustomization.namespace;
      else manifest.metadata.namespace = kustomization.namespace;
    }
  }

  for (const label of kustomization.labels ?? []) {
    if (label.includeSelectors || label.includeTemplates) throw new Error('labels with includeSelectors/includeTemplates are not supported by this renderer');
    for (const manifest of manifests) manifest.metadata.labels = { ...manifest.metadata.labels, ...label.pairs };
  }

  for (const rule of kustomization.images ?? []) {
    for (const spec of manifests.flatMap(podSpecsOf)) {
      for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
        container.image = setImage(container.image, rule) ?? container.image;
      }
    }
  }

  for (const rule of kustomization.replicas ?? []) {
    const targets = manifests.filter((m) => ['Deployment', 'StatefulSet', 'ReplicaSet'].includes(m.kind) && m.metadata.name === rule.name);
    if (targets.length === 0) throw new Error(`${dir}: replicas for ${rule.name}: no such workload`);
    for (const manifest of targets) manifest.spec.replicas = rule.count;
  }
  return manifests;
}
