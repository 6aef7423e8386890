import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config/config';
import { loadSimulatorConfig } from '../../src/fleet-simulator/simulator-config';

const ROOT = path.resolve(__dirname, '../..');

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target: number; published?: number | string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test: string[] | string };
  restart?: string;
  secrets?: string[];
  volumes?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { environment?: string; file?: string }>;
}

const composeText = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as ComposeFile;
const localPorts = parse(readFileSync(path.join(ROOT, 'docker-compose.local-ports.yml'), 'utf8')) as ComposeFile;
const services = Object.entries(compose.services);
/** Services that run this repository's image (the others are third-party images). */
const ourServices = services.filter(([, service]) => service.build !== undefined);

/** Environment variable names a loader reads, recorded by handing it an empty, watching env. */
function keysRead(loader: (env: Record<string, string | undefined>) => unknown): Set<string> {
  const keys = new Set<string>();
  const env = new Proxy({} as Record<string, string | undefined>, {
    get(_target, key) {
      if (typeof key === 'string') keys.add(key);
      return undefined;
    },
  });
  loader(env);
  return keys;
}

function environmentKeys(service: ComposeService): string[] {
  const env = service.environment ?? {};
  return Array.isArray(env) ? env.map((entry) => entry.split('=')[0] ?? entry) : Object.keys(env);
}

function environmentValue(service: ComposeService, key: string): string | undefined {
  const env = service.environment ?? {};
  if (Array.isArray(env)) return env.find((entry) => entry.startsWith(`${key}=`))?.slice(key.length + 1);
  const value = env[key];
  return value === undefined || value === null ? undefined : String(value);
}

function dependencies(service: ComposeService): Record<string, string> {
  const deps = service.depends_on ?? {};
  if (Array.isArray(deps)) return Object.fromEntries(deps.map((name) => [name, 'service_started']));
  return Object.fromEntries(Object.entries(deps).map(([name, spec]) => [name, spec.condition ?? 'service_started']));
}

/** [host, container] port pairs of a service. */
function portPairs(service: ComposeService): [number, number][] {
  return (service.ports ?? []).map((port) => {
    if (typeof port === 'object') return [Number(port.published ?? port.target), port.target];
    const parts = String(port).split(':');
    const container = Number(parts[parts.length - 1]);
    const host = parts.length > 1 ? Number(parts[parts.length - 2]) : container;
    return [host, container];
  });
}

/** What Compose does with `${NAME:?message}`: the value from the environment, or no start at all. */
const REQUIRED_VARIABLE = /\$\{([A-Z0-9_]+):\?[^}]*\}/g;
const SAMPLE_SECRETS: Record<string, string> = { POSTGRES_PASSWORD: 'owner-pw-0a1b', VM_TENANT_APP_DB_PASSWORD: 'app-pw-2c3d', NATS_PASSWORD: 'nats-pw-4e5f' };

function interpolate(value: string): string {
  return value.replace(REQUIRED_VARIABLE, (_match, name: string) => {
    const sample = SAMPLE_SECRETS[name];
    if (sample === undefined) throw new Error(`no sample value for ${name}`);
    return sample;
  });
}

/** Every `host:port` binding a service publishes, as written. */
function publishedBindings(service: ComposeService): string[] {
  return (service.ports ?? []).map((port) => (typeof port === 'object' ? `${port.published}:${port.target}` : String(port)));
}

/** The source file a build output file is compiled from (tsconfig.build.json: src/ -> dist/). */
function sourceOf(file: string): string {
  return file.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts');
}

function commandOf(service: ComposeService): string[] {
  if (service.command === undefined) return [];
  return Array.isArray(service.command) ? service.command : service.command.split(/\s+/).filter(Boolean);
}

describe('docker-compose.yml', () => {
  test('when listing the services, then the whole stack is there', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      expect.arrayContaining(['api', 'fleet-simulator', 'migrate', 'nats', 'postgres', 'temporal', 'worker']),
    );
  });

  test.each(services)('when reading service %s, then it has an image or a build', (_name, service) => {
    expect(service.image !== undefined || service.build !== undefined).toBe(true);
  });

  test('when reading the third-party images, then Postgres is 16 and NATS runs with JetStream', () => {
    expect(compose.services.postgres?.image).toMatch(/^postgres:16(\b|$)/);
    expect(commandOf(compose.services.nats ?? {})).toContain('-js');
  });

  test.each(services)('when reading the ports of %s, then each maps a valid host port to a valid container port', (_name, service) => {
    for (const [host, container] of portPairs(service)) {
      expect(Number.isInteger(host) && host > 0 && host < 65536).toBe(true);
      expect(Number.isInteger(container) && container > 0 && container < 65536).toBe(true);
    }
  });

  test('when publishing ports, also through the local-ports override, then no host port is used twice', () => {
    const hostPorts = [...services, ...Object.entries(localPorts.services)].flatMap(([, service]) => portPairs(service).map(([host]) => host));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  test('when reading the api service, then it listens on and publishes 9221', () => {
    const api = compose.services.api;
    expect(api).toBeDefined();
    expect(portPairs(api!)).toContainEqual([9221, 9221]);
    expect(environmentValue(api!, 'PORT') ?? '9221').toBe('9221');
    expect(environmentValue(api!, 'HOST')).toBe('0.0.0.0');
  });

  test('when reading the published ports, then only the API publishes one', () => {
    const publishing = services.filter(([, service]) => (service.ports ?? []).length > 0).map(([name]) => name);
    expect(publishing).toEqual(['api']);
  });

  test('when the local-ports override publishes the internal services, then every binding is on 127.0.0.1 and names a service of the stack', () => {
    const overridden = Object.entries(localPorts.services);
    expect(overridden.length).toBeGreaterThan(0);
    for (const [name, service] of overridden) {
      expect(compose.services[name]).toBeDefined();
      const bindings = publishedBindings(service);
      expect(bindings.length).toBeGreaterThan(0);
      for (const binding of bindings) expect({ service: name, binding }).toEqual({ service: name, binding: expect.stringMatching(/^127\.0\.0\.1:\d+:\d+$/) });
    }
    const published = (name: string) => portPairs(localPorts.services[name] ?? {}).map(([, container]) => container);
    expect(published('temporal')).toEqual(expect.arrayContaining([7233, 8233]));
  });

  test('when the API and the worker connect to Postgres, then they use the service login vm_tenant_app and never get the owner login', () => {
    for (const name of ['api', 'worker']) {
      const service = compose.services[name] ?? {};
      expect(environmentKeys(service)).not.toContain('MIGRATION_DATABASE_URL');
      const url = new URL(interpolate(environmentValue(service, 'DATABASE_URL') ?? ''));
      expect({ service: name, user: url.username }).toEqual({ service: name, user: 'vm_tenant_app' });
      const everything = JSON.stringify(service);
      expect(everything).not.toContain('POSTGRES_PASSWORD');
      expect(everything).not.toMatch(/postgres:\/\/postgres[:@]/);
    }
    // The owner login appears in exactly one service: the one-shot migration.
    const withOwner = services.filter(([, service]) => /postgres:\/\/postgres[:@]/.test(JSON.stringify(service.environment ?? {}))).map(([name]) => name);
    expect(withOwner).toEqual(['migrate']);
  });

  test('when a service URL carries a login, then its password is a required variable from the environment, never written in the file', () => {
    const urls = services.flatMap(([name, service]) =>
      environmentKeys(service)
        .map((key) => ({ name, key, value: environmentValue(service, key) ?? '' }))
        .filter(({ value }) => /^(postgres|postgresql|nats):\/\//.test(value)),
    );
    expect(urls.length).toBeGreaterThanOrEqual(4);
    for (const { name, key, value } of urls) {
      const userInfo = /^[a-z]+:\/\/([^@/]*)@/.exec(value)?.[1];
      expect({ name, key, hasLogin: userInfo !== undefined }).toEqual({ name, key, hasLogin: true });
      const password = userInfo!.slice(userInfo!.indexOf(':') + 1);
      expect({ name, key, password }).toEqual({ name, key, password: expect.stringMatching(/^\$\{[A-Z0-9_]+:\?[^}]+\}$/) });
    }
  });

  test('when Postgres starts, then it authenticates every connection with scram-sha-256, trusts none, and reads its passwords from Compose secrets', () => {
    const postgres = compose.services.postgres ?? {};
    expect(environmentValue(postgres, 'POSTGRES_HOST_AUTH_METHOD')).toBe('scram-sha-256');
    expect(environmentValue(postgres, 'POSTGRES_INITDB_ARGS')).toEqual(expect.stringContaining('--auth-local=scram-sha-256'));
    expect(environmentValue(postgres, 'POSTGRES_INITDB_ARGS')).toEqual(expect.stringContaining('--auth-host=scram-sha-256'));
    expect(composeText).not.toMatch(/\btrust\b/i);
    expect(environmentKeys(postgres)).not.toContain('POSTGRES_PASSWORD');
    expect(environmentValue(postgres, 'POSTGRES_PASSWORD_FILE')).toBe('/run/secrets/postgres_password');
    expect(postgres.secrets).toEqual(expect.arrayContaining(['postgres_password', 'vm_tenant_app_db_password']));
    for (const secret of postgres.secrets ?? []) expect(compose.secrets?.[secret]?.environment).toMatch(/^[A-Z0-9_]+$/);
  });

  test('when Postgres initialises its volume, then a mounted init script creates vm_tenant_app with the password from its secret file', () => {
    const mount = (compose.services.postgres?.volumes ?? []).find((volume) => volume.includes('/docker-entrypoint-initdb.d'));
    expect(mount).toBeDefined();
    const hostDir = path.join(ROOT, mount!.split(':')[0]!);
    const script = readFileSync(path.join(hostDir, '10-service-login.sh'), 'utf8');
    expect(script).toContain('/run/secrets/vm_tenant_app_db_password');
    expect(script).toMatch(/create role vm_tenant_app login password %L', :'password'/);
    expect(script).toContain("password_encryption = 'scram-sha-256'");
  });

  test('when NATS starts, then it requires the login the app services send in NATS_URL', () => {
    const nats = compose.services.nats ?? {};
    const configMount = (nats.volumes ?? []).find((volume) => volume.endsWith(':/etc/nats/nats.conf:ro'));
    expect(configMount).toBeDefined();
    expect(commandOf(nats)).toEqual(expect.arrayContaining(['-c', '/etc/nats/nats.conf']));
    const natsConf = readFileSync(path.join(ROOT, configMount!.split(':')[0]!), 'utf8');
    const authorization = /authorization\s*\{([^}]*)\}/.exec(natsConf)?.[1] ?? '';
    expect(authorization).toMatch(/user:\s*vm_tenant\b/);
    expect(authorization).toMatch(/password:\s*\$NATS_PASSWORD\b/);
    expect(environmentValue(nats, 'NATS_PASSWORD')).toMatch(/^\$\{NATS_PASSWORD:\?/);
    for (const name of ['api', 'worker']) {
      const url = new URL(interpolate(environmentValue(compose.services[name] ?? {}, 'NATS_URL') ?? ''));
      expect({ service: name, user: url.username, password: url.password }).toEqual({
        service: name,
        user: 'vm_tenant',
        password: SAMPLE_SECRETS.NATS_PASSWORD,
      });
    }
  });

  test.each(services)('when %s depends on other services, then they exist and the conditions can be met', (name, service) => {
    for (const [dependency, condition] of Object.entries(dependencies(service))) {
      expect(dependency).not.toBe(name);
      const target = compose.services[dependency];
      expect(target).toBeDefined();
      expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(condition);
      if (condition === 'service_healthy') expect(target?.healthcheck).toBeDefined();
      if (condition === 'service_completed_successfully') expect(target?.restart ?? 'no').toBe('no');
    }
  });

  test('when following depends_on, then there is no cycle', () => {
    const visiting = new Set<string>();
    const done = new Set<string>();
    const visit = (name: string, trail: string[]): void => {
      if (done.has(name)) return;
      if (visiting.has(name)) throw new Error(`depends_on cycle: ${[...trail, name].join(' -> ')}`);
      visiting.add(name);
      for (const dependency of Object.keys(dependencies(compose.services[name] ?? {}))) visit(dependency, [...trail, name]);
      visiting.delete(name);
      done.add(name);
    };
    expect(() => Object.keys(compose.services).forEach((name) => visit(name, []))).not.toThrow();
  });

  test('when the app services need the database and Temporal, then they wait for migrations and a healthy Temporal', () => {
    for (const name of ['api', 'worker']) {
      const deps = dependencies(compose.services[name] ?? {});
      expect(deps.migrate).toBe('service_completed_successfully');
      expect(deps.temporal).toBe('service_healthy');
      expect(deps.nats).toBe('service_healthy');
    }
    expect(dependencies(compose.services.migrate ?? {}).postgres).toBe('service_healthy');
  });

  test('when setting environment variables of our services, then each is one that our config loaders read', () => {
    const appKeys = keysRead(loadConfig);
    const simulatorKeys = keysRead(loadSimulatorConfig);
    expect(appKeys.has('DATABASE_URL')).toBe(true); // the recording works
    for (const [name, service] of ourServices) {
      const known = name === 'fleet-simulator' ? simulatorKeys : appKeys;
      const unknown = environmentKeys(service).filter((key) => !known.has(key));
      expect({ service: name, unknown }).toEqual({ service: name, unknown: [] });
    }
  });

  test('when the app services get their configuration, then loadConfig accepts it', () => {
    for (const name of ['api', 'worker', 'migrate']) {
      const service = compose.services[name] ?? {};
      const env = Object.fromEntries(environmentKeys(service).map((key) => [key, interpolate(environmentValue(service, key) ?? '')]));
      expect(() => loadConfig(env)).not.toThrow();
    }
  });

  test.each(ourServices)('when %s runs a command, then it is plain node on a build output file whose source exists', (_name, service) => {
    const command = commandOf(service);
    expect(command[0]).toBe('node');
    expect(command).not.toContain('--import');
    const files = command.filter((part) => /\.(ts|js|mjs|cjs)$/.test(part));
    expect(files).toEqual([expect.stringMatching(/^dist\/.+\.js$/)]);
    for (const file of files) expect(existsSync(path.join(ROOT, sourceOf(file)))).toBe(true);
  });

  test('when building the image, then the Dockerfile copies and runs files that exist', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    // COPY --from=<stage> copies from an earlier stage, not from the repository.
    const copied = [...dockerfile.matchAll(/^COPY\s+(?!--from)(.+)\s+\S+$/gm)].flatMap((m) => (m[1] ?? '').split(/\s+/));
    expect(copied.length).toBeGreaterThan(0);
    for (const source of copied) expect(existsSync(path.join(ROOT, source))).toBe(true);
    const referenced = [...dockerfile.matchAll(/(dist\/[\w./-]+\.js)/g)].map((m) => m[1] ?? '');
    expect(referenced.length).toBeGreaterThan(0);
    for (const file of referenced) expect(existsSync(path.join(ROOT, sourceOf(file)))).toBe(true);
  });

  test('when building the image, then it compiles in a build stage and runs plain node as a non-root user', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^FROM \S+ AS build$/m);
    expect(dockerfile).toMatch(/^RUN npm run build$/m);
    expect(dockerfile).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "dist\/api\/server\.js"\]$/m);
    expect(dockerfile).not.toMatch(/--import/);
  });
});
