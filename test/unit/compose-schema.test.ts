import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv, { type ErrorObject } from 'ajv';
import draft07 from 'ajv/dist/refs/json-schema-draft-07.json';
import { parse } from 'yaml';
import { generateToken } from '../../src/auth/token-format';
import { loadConfig } from '../../src/config/config';
import { deploymentNatsUsers } from '../helpers/nats-users-conf';

/**
 * Every Compose file of the repository against the Compose Specification's JSON schema (vendored,
 * see test/fixtures/compose-spec/SOURCE.md), offline, since no Docker engine runs here; and the
 * production file's shape. docker-compose.test.ts keeps checking the development file.
 */
const ROOT = path.resolve(__dirname, '../..');
const COMPOSE_FILES = ['docker-compose.yml', 'docker-compose.local-ports.yml', 'docker-compose.production.yml'];

const schema = JSON.parse(readFileSync(path.join(ROOT, 'test/fixtures/compose-spec/compose-spec.json'), 'utf8')) as object;
// strict: false because the specification uses keywords of its own ("deprecated") beside draft-07.
const ajv = new Ajv({ allErrors: true, strict: false });
// The specification names draft-07 by its https URI, without the '#' of the meta-schema's own id.
ajv.addMetaSchema({ ...draft07, $id: 'https://json-schema.org/draft-07/schema' });
const validate = ajv.compile(schema);

/** Compose resolves YAML merge keys (<<: *anchor) before validating; so do we. */
function load(file: string): Record<string, any> {
  return parse(readFileSync(path.join(ROOT, file), 'utf8'), { merge: true }) as Record<string, any>;
}

function schemaErrors(document: unknown): string[] {
  if (validate(document)) return [];
  return (validate.errors ?? []).map((error: ErrorObject) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
}

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  secrets?: string[];
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  read_only?: boolean;
  healthcheck?: { test?: string[]; start_period?: string };
}

const production = load('docker-compose.production.yml') as { services: Record<string, Service>; secrets: Record<string, { environment?: string }> };
const services = production.services;
const ours = Object.entries(services).filter(([, service]) => service.build !== undefined);

const SAMPLES: Record<string, string> = {
  POSTGRES_PASSWORD: 'owner-pw',
  VM_TENANT_APP_DB_PASSWORD: 'app-pw',
  TEMPORAL_DB_PASSWORD: 'temporal-pw',
  NATS_WORKER_PASSWORD: 'nats-worker-pw',
  NATS_API_PASSWORD: 'nats-api-pw',
  ADMIN_TOKEN: generateToken(),
  FLEET_URL: 'https://fleet.example.internal',
};

/** What Compose does with `${NAME:?message}` and `${NAME:-default}`. */
function interpolate(value: string): string {
  return value.replace(/\$\{([A-Z0-9_]+)(?::\?[^}]*|:-([^}]*))?\}/g, (_match, name: string, fallback?: string) => {
    const sample = SAMPLES[name] ?? fallback;
    if (sample === undefined) throw new Error(`no sample value for ${name}`);
    return sample;
  });
}

/** The host file of a service's single-file mount at `target`. */
function mountedFile(service: Service, target: string): string {
  const mount = (service.volumes ?? []).find((volume) => volume.split(':')[1] === target);
  if (!mount) throw new Error(`nothing mounted at ${target}`);
  return mount.split(':')[0]!;
}

/** The named volume a service mounts at `target`, if any. */
function volumeAt(service: Service, target: string): string | undefined {
  return (service.volumes ?? []).find((volume) => volume.split(':')[1] === target)?.split(':')[0];
}

/** DATA_DIR of the image (Dockerfile ENV), where the worker keeps its private key. */
const IMAGE_DATA_DIR = /DATA_DIR=(\S+)/.exec(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'))![1]!;

describe('Compose files against the Compose Specification schema', () => {
  test.each(COMPOSE_FILES)('when validating %s, then the schema accepts it', (file) => {
    expect(schemaErrors(load(file))).toEqual([]);
  });

  test('when a service carries a key the specification does not know, then the schema rejects it (the check can fail)', () => {
    const broken = load('docker-compose.production.yml');
    broken.services.worker.replicaz = 2;
    expect(schemaErrors(broken).join('\n')).toMatch(/\/services\/worker .*additionalProperty.*replicaz/);
  });
});

describe('docker-compose.production.yml', () => {
  test('when reading the Temporal services, then a Temporal server runs on Postgres, after its schema tool, with the UI beside it', () => {
    expect(services.temporal?.image).toMatch(/^temporalio\/server:\d+\.\d+\.\d+$/);
    expect(services.temporal?.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgres', POSTGRES_USER: 'temporal' });
    expect(services.temporal?.depends_on?.['temporal-schema']?.condition).toBe('service_completed_successfully');
    expect(JSON.stringify(services)).not.toContain('start-dev');

    const schemaTool = services['temporal-schema'];
    expect(schemaTool?.image).toMatch(/^temporalio\/admin-tools:/);
    const script = readFileSync(path.join(ROOT, (schemaTool?.volumes?.[0] ?? '').split(':')[0]!), 'utf8');
    // test/deploy/compose-startup.test.ts runs the script against a stub tool.
    expect(script).toMatch(/temporal-sql-tool --plugin postgres12 /);
    expect(script).toMatch(/setup-schema -v 0\.0 && tool --db "\$1" update-schema -d "\$SCHEMA_DIR\/\$2\/versioned"/);
    expect(script).toContain('temporal}:temporal');
    expect(script).toContain('temporal_visibility}:visibility');

    expect(services['temporal-ui']?.image).toMatch(/^temporalio\/ui:/);
    expect(services['temporal-namespace']?.environment?.TEMPORAL_NAMESPACE).toBe(services.api?.environment?.TEMPORAL_NAMESPACE);
  });

  test('when a program of ours runs, then Compose asks it whether it is healthy: the API its readiness, the worker its /healthz on the metrics port', () => {
    const probe = (name: string) => (services[name]?.healthcheck?.test ?? []).join(' ');
    expect(probe('api')).toContain(`http://127.0.0.1:${loadConfig({}).port}/readyz`);
    expect(probe('worker')).toContain(`http://127.0.0.1:${loadConfig({}).workerMetricsPort}/healthz`);
    expect(services.worker?.healthcheck?.start_period).toBe('600s'); // the worker waits for Postgres and Temporal at start
  });

  test('when Postgres initialises, then the temporal login gets its password from a Compose secret', () => {
    expect(services.postgres?.secrets).toContain('temporal_db_password');
    expect(production.secrets.temporal_db_password?.environment).toBe('TEMPORAL_DB_PASSWORD');
    const init = readFileSync(path.join(ROOT, 'docker/postgres-initdb/20-temporal-login.sh'), 'utf8');
    expect(init).toContain('/run/secrets/temporal_db_password');
    expect(init).toMatch(/create role temporal login createdb password %L', :'password'/);
  });

  test('when NATS starts, then JetStream stores on a volume and every client needs a login: the worker and the API each their own', () => {
    const nats = services.nats!;
    expect(nats.command).toEqual(expect.arrayContaining(['-js', '-c', '/etc/nats/nats.conf']));
    expect(nats.volumes).toContain('nats-data:/data');
    const conf = readFileSync(path.join(ROOT, mountedFile(nats, '/etc/nats/nats.conf')), 'utf8');
    expect(conf).toMatch(/jetstream\s*\{[^}]*store_dir:\s*\/data/);
    // The users file is mounted beside it, where its include finds it.
    expect(conf).toMatch(/^include "vm-tenant-users\.conf"$/m);
    expect(mountedFile(nats, '/etc/nats/vm-tenant-users.conf')).toBe('./docker/nats/vm-tenant-users.conf');
    const users = deploymentNatsUsers();
    const logins = Object.fromEntries(['api', 'worker'].map((name) => [name, new URL(interpolate(services[name]?.environment?.NATS_URL ?? ''))]));
    expect({ api: logins.api!.username, worker: logins.worker!.username }).toEqual({ api: 'vm_tenant_api', worker: 'vm_tenant_worker' });
    for (const [name, url] of Object.entries(logins)) {
      const variable = /^\$([A-Z_]+)$/.exec(users[url.username]?.password ?? '')?.[1];
      expect({ name, password: url.password }).toEqual({ name, password: SAMPLES[variable ?? ''] });
      expect(nats.environment?.[variable!]).toMatch(new RegExp(`^\\$\\{${variable}:\\?`));
    }
  });

  test('when the NATS users are read, then both may neither delete, purge nor reconfigure the checkpoint stream, and the API may publish nothing', () => {
    const users = deploymentNatsUsers();
    expect(Object.keys(users).sort()).toEqual(['vm_tenant_api', 'vm_tenant_worker']);
    for (const [user, { allow, deny }] of Object.entries(users)) {
      // Deny wins over allow in NATS: these hold whatever the allow list says.
      expect({ user, deny }).toEqual({
        user,
        deny: expect.arrayContaining(['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.MSG.DELETE.>']),
      });
      expect({
        user,
        updateCheckpoints: deny.some((subject) => ['$JS.API.STREAM.UPDATE.VM_TENANT_CHECKPOINTS', '$JS.API.STREAM.UPDATE.>'].includes(subject)),
      }).toEqual({ user, updateCheckpoints: true });
      expect({ user, allowsEverything: allow.some((subject) => subject === '>' || subject.startsWith('$JS.API.>')) }).toEqual({
        user,
        allowsEverything: false,
      });
    }
    expect(users.vm_tenant_worker!.allow).toEqual(expect.arrayContaining(['vmtenant.>', 'vmtenant_ledger.checkpoint']));
    // The API reads: only JetStream's info and message reads of the checkpoint stream.
    expect(
      users.vm_tenant_api!.allow.every((subject) =>
        /^\$JS\.API\.(INFO|STREAM\.INFO\.VM_TENANT_CHECKPOINTS|STREAM\.MSG\.GET\.VM_TENANT_CHECKPOINTS)$/.test(subject),
      ),
    ).toBe(true);
    expect(users.vm_tenant_api!.deny).toEqual(expect.arrayContaining(['vmtenant_ledger.checkpoint', 'vmtenant.>']));
  });

  test("when the checkpoint key is mounted, then the API gets the public half only: never the worker's data volume, only a read-only volume the worker writes the public key into", () => {
    const dataDir = (service: Service) => service.environment?.DATA_DIR ?? IMAGE_DATA_DIR;
    const worker = services.worker!;
    const api = services.api!;
    const workerData = volumeAt(worker, dataDir(worker));
    expect(workerData).toBeDefined();
    // The private key's volume belongs to the worker alone.
    for (const [name, service] of Object.entries(services))
      if (name !== 'worker') expect({ name, mounts: (service.volumes ?? []).filter((v) => v.split(':')[0] === workerData) }).toEqual({ name, mounts: [] });
    // The API reads the public key where the worker writes it, on a volume the API mounts read-only.
    const file = api.environment?.LEDGER_CHECKPOINT_PUBLIC_KEY_FILE ?? '';
    expect(worker.environment?.LEDGER_CHECKPOINT_PUBLIC_KEY_FILE).toBe(file);
    const apiMount = (api.volumes ?? []).find((v) => file.startsWith(`${v.split(':')[1]}/`));
    expect(apiMount).toMatch(/^[\w-]+:\S+:ro$/);
    const [volume, target] = apiMount!.split(':');
    expect(worker.volumes).toContain(`${volume}:${target}`);
    expect(volume).not.toBe(workerData);
    // Whatever the API mounts from the worker is read-only.
    const workerVolumes = new Set((worker.volumes ?? []).map((v) => v.split(':')[0]));
    for (const mount of api.volumes ?? []) if (workerVolumes.has(mount.split(':')[0])) expect(mount).toMatch(/:ro$/);
    // Named volumes take their owner from the image: the worker (uid 1000) can write there.
    expect(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).toMatch(new RegExp(`chown node:node .*${target!.replace(/[.]/g, '\\.')}\\b`));
  });

  test.each(ours)('when %s runs, then it is the project image on plain node over the build output', (_name, service) => {
    expect(service.command?.[0]).toBe('node');
    expect(service.command?.slice(1)).toEqual([expect.stringMatching(/^dist\/[\w/-]+\.js$/)]);
    expect(existsSync(path.join(ROOT, service.command![1]!.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')))).toBe(true);
  });

  test('when reading the app services, then the worker runs two replicas and both app services have read-only root filesystems', () => {
    expect(services.worker?.deploy?.replicas).toBeGreaterThanOrEqual(2);
    expect(services.worker?.read_only).toBe(true);
    expect(services.api?.read_only).toBe(true);
  });

  test('when the API and the worker get their configuration, then loadConfig accepts it, reads every key, and none is the owner login', () => {
    for (const name of ['api', 'worker', 'migrate']) {
      const env = Object.fromEntries(Object.entries(services[name]?.environment ?? {}).map(([key, value]) => [key, interpolate(String(value))]));
      const read = new Set<string>();
      loadConfig(new Proxy(env, { get: (target, key: string) => (read.add(key), target[key]) }));
      expect({ name, unread: Object.keys(env).filter((key) => !read.has(key) && key !== 'NODE_ENV') }).toEqual({ name, unread: [] });
      if (name !== 'migrate') expect(new URL(env.DATABASE_URL ?? '').username).toBe('vm_tenant_app');
    }
  });

  test('when publishing ports, then only the API is reachable from outside and the Temporal UI only on loopback', () => {
    const published = Object.entries(services).flatMap(([name, service]) => (service.ports ?? []).map((port) => `${name} ${port}`));
    expect(published.sort()).toEqual(['api 9221:9221', 'temporal-ui 127.0.0.1:8080:8080']);
  });

  test('when a service URL or a password carries a secret, then it is a required variable, never written in the file', () => {
    const text = readFileSync(path.join(ROOT, 'docker-compose.production.yml'), 'utf8');
    const secretKeys = [...text.matchAll(/^\s+([A-Z_]*(?:PASSWORD|PWD|TOKEN)):\s*(.+)$/gm)];
    expect(secretKeys.map((match) => match[1]).sort()).toEqual(['ADMIN_TOKEN', 'NATS_API_PASSWORD', 'NATS_WORKER_PASSWORD', 'POSTGRES_PWD']);
    for (const match of secretKeys) expect({ key: match[1], value: match[2] }).toEqual({ key: match[1], value: expect.stringMatching(/^\$\{[A-Z0-9_]+:\?/) });
    for (const match of text.matchAll(/(?:postgres|nats):\/\/[^:]+:([^@]+)@/g)) expect(match[1]).toMatch(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/);
  });
});
