/**
 * A small kustomize renderer for the subset deploy/k8s uses, so that the tests render the overlays
 * without a kustomize binary (none ships in an npm or PyPI package usable here). It supports
 * `resources` (files and directories with a kustomization.yaml), `namespace`, `labels` (pairs on
 * metadata.labels only, kustomize's default), `images`, `replicas`, `patches` given as JSON 6902
 * operation files with a kind/name target, `configMapGenerator` (`envs` files and `literals`,
 * `behavior: merge`; the name gets kustomize's content hash, and the workloads' references follow
 * it) and `replacements` (one source field into target fields, with `delimiter`/`index`). Anything
 * else in a kustomization is an error rather than silently ignored. test/unit/k8s-manifests.test.ts compares its output with
 * `kubectl kustomize` where kubectl is installed.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export type Manifest = Record<string, any> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  namespace?: string;
  labels?: { pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }[];
  images?: { name: string; newName?: string; newTag?: string }[];
  replicas?: { name: string; count: number }[];
  patches?: { path: string; target: { kind: string; name: string } }[];
  configMapGenerator?: { name: string; namespace?: string; behavior?: 'create' | 'merge'; envs?: string[]; literals?: string[] }[];
  replacements?: Replacement[];
}

interface DelimiterOptions {
  delimiter?: string;
  index?: number;
}

interface Replacement {
  source: { kind: string; name: string; fieldPath: string; options?: DelimiterOptions };
  targets: { select: { kind: string; name: string }; fieldPaths: string[]; options?: DelimiterOptions }[];
}

const SUPPORTED = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images', 'replicas', 'patches', 'configMapGenerator', 'replacements']);

/** Marks a generated ConfigMap whose name gets the content hash once the whole build is done. */
const NEEDS_HASH = Symbol('needs-hash');

type PatchOperation = { op: 'add' | 'replace' | 'remove'; path: string; value?: unknown };

function pointer(pathText: string): string[] {
  if (!pathText.startsWith('/')) throw new Error(`JSON pointer must start with /: ${pathText}`);
  return pathText
    .slice(1)
    .split('/')
    .map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
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

/** KEY=value lines of a kustomize `envs` file (blank lines and # comments skipped). */
function readEnvFile(file: string): Record<string, string> {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
  return Object.fromEntries(entries);
}

function generateConfigMaps(dir: string, kustomization: Kustomization, manifests: Manifest[]): void {
  for (const generator of kustomization.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const envs of generator.envs ?? []) Object.assign(data, readEnvFile(path.join(dir, envs)));
    for (const literal of generator.literals ?? []) data[literal.slice(0, literal.indexOf('='))] = literal.slice(literal.indexOf('=') + 1);
    if (generator.behavior === 'merge') {
      const base = manifests.find((m) => m.kind === 'ConfigMap' && m.metadata.name === generator.name);
      if (!base) throw new Error(`${dir}: configMapGenerator merge: no ConfigMap ${generator.name}`);
      base.data = { ...base.data, ...data };
    } else {
      const manifest: Manifest = {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: generator.name, ...(generator.namespace ? { namespace: generator.namespace } : {}) },
        data,
      };
      Object.defineProperty(manifest, NEEDS_HASH, { value: true, enumerable: false });
      manifests.push(manifest);
    }
  }
}

/**
 * kustomize's name suffix (api/hasher): sha256 of the JSON of data, kind and name (kustomize 5 hashes
 * with the name empty), its first 10 hex digits with some swapped for letters.
 */
function configMapHash(manifest: Manifest): string {
  const encoded = JSON.stringify({
    data: Object.fromEntries(Object.entries(manifest.data ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))),
    kind: 'ConfigMap',
    name: '',
  });
  const swap: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return [...createHash('sha256').update(encoded).digest('hex').slice(0, 10)].map((c) => swap[c] ?? c).join('');
}

/** Names the generated ConfigMaps after their content, and points every reference of a pod at the new name. */
function hashGeneratedNames(manifests: Manifest[]): void {
  for (const generated of manifests.filter((m) => (m as Record<symbol, unknown>)[NEEDS_HASH])) {
    const from = generated.metadata.name;
    const to = `${from}-${configMapHash(generated)}`;
    generated.metadata.name = to;
    for (const spec of manifests.filter((m) => m.metadata.namespace === generated.metadata.namespace).flatMap(podSpecsOf)) {
      for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
        for (const source of container.envFrom ?? []) if (source.configMapRef?.name === from) source.configMapRef.name = to;
        for (const variable of container.env ?? []) if (variable.valueFrom?.configMapKeyRef?.name === from) variable.valueFrom.configMapKeyRef.name = to;
      }
      for (const volume of spec.volumes ?? []) if (volume.configMap?.name === from) volume.configMap.name = to;
    }
  }
}

/** Walks a kustomize field path (`a.b.[name=x].c`); `set` replaces the last field. */
function fieldAt(manifest: Manifest, fieldPath: string, set?: (value: string) => string): string {
  const tokens = fieldPath.split('.');
  let node: any = manifest;
  for (const [i, token] of tokens.entries()) {
    const match = /^\[(\w+)=(.*)\]$/.exec(token);
    const key = match ? (node as any[]).findIndex((item) => String(item?.[match[1]!]) === match[2]) : token;
    if (i === tokens.length - 1) {
      if (set) node[key] = set(String(node[key]));
      return String(node[key]);
    }
    node = node?.[key];
    if (node === undefined) throw new Error(`replacements: ${fieldPath} not found in ${manifest.kind}/${manifest.metadata.name}`);
  }
  throw new Error(`replacements: empty field path`);
}

function applyReplacements(replacements: Replacement[], manifests: Manifest[]): void {
  const one = (kind: string, name: string) => {
    const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
    if (found.length !== 1) throw new Error(`replacements: ${found.length} ${kind} named ${name}`);
    return found[0]!;
  };
  for (const { source, targets } of replacements) {
    let value = fieldAt(one(source.kind, source.name), source.fieldPath);
    if (source.options?.delimiter !== undefined) {
      const part = value.split(source.options.delimiter)[source.options.index ?? 0];
      if (part === undefined) throw new Error(`replacements: options.index ${source.options.index} is out of bounds for value ${value}`);
      value = part;
    }
    for (const target of targets) {
      const manifest = one(target.select.kind, target.select.name);
      for (const fieldPath of target.fieldPaths) {
        fieldAt(manifest, fieldPath, (current) => {
          const { delimiter, index = 0 } = target.options ?? {};
          if (delimiter === undefined) return value;
          const parts = current.split(delimiter);
          if (index >= parts.length) parts.push(value);
          else if (index < 0) parts.unshift(value);
          else parts[index] = value;
          return parts.join(delimiter);
        });
      }
    }
  }
}

/** Renders the kustomization in `dir` (a directory holding kustomization.yaml) to its manifests. */
export function renderKustomization(dir: string): Manifest[] {
  const manifests = renderLayer(dir);
  hashGeneratedNames(manifests);
  return manifests;
}

function renderLayer(dir: string): Manifest[] {
  const kustomization = parse(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const unsupported = Object.keys(kustomization).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0) throw new Error(`${dir}/kustomization.yaml: not supported by this renderer: ${unsupported.join(', ')}`);

  const manifests: Manifest[] = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.resolve(dir, resource);
    manifests.push(...(statSync(target).isDirectory() ? renderLayer(target) : readManifests(target)));
  }
  generateConfigMaps(dir, kustomization, manifests);

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
  applyReplacements(kustomization.replacements ?? [], manifests);
  return manifests;
}
