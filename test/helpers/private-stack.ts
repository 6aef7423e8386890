/**
 * A whole vm-tenant system on private parts, for tests that stop, kill and restart real processes
 * (test/faults). Nothing here touches the services the rest of the Jest run shares: each stack has
 * its own PostgreSQL cluster, nats-server, Temporal dev server (on a SQLite file, so it can be
 * restarted on the same state), fleet simulator, worker and API, all on free ports, all under one
 * temporary directory that stop() removes.
 *
 * Every part can be started, stopped gracefully (SIGTERM / pg_ctl -m fast), killed (SIGKILL) and
 * restarted on the same port and the same data. Output goes to <dir>/logs/<part>.log; when a test
 * fails, `stack.tail(part)` shows the last lines.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../../src/db/tables';
import { migrateToLatest } from '../../src/db/migrate';
import { spawnManaged, type ManagedChild } from '../../src/devstack/child-process';
import { acceptsTcp, waitUntilReady } from '../../src/devstack/readiness';
import { stackEnv } from '../../src/devstack/service-env';
import type { ServiceProcess } from '../../src/devstack/service-process';
import { DevStack, type StackService } from '../../src/devstack/stack';
import { getFreePort } from '../../src/devstack/free-port';
import { ensureTemporalBinary } from '../../src/devstack/temporal-binary';
import { generateToken } from '../../src/auth/token-format';
import { startTemporalDevServer, type TemporalDevServer } from '../../src/devstack/temporal-dev-server';
import { checkResponsesFrom } from './openapi-response-check';

/** One restartable part of the stack. */
export interface StackPart {
  readonly name: string;
  isRunning(): boolean;
  start(): Promise<void>;
  /** Graceful stop; resolves once the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL: no shutdown code runs. */
  kill(): Promise<void>;
  restart(): Promise<void>;
}

/** A part that can be frozen (SIGSTOP) and thawed (SIGCONT): a hung server, as its clients see it. */
export interface PausablePart {
  pause(): void;
  resume(): void;
}

/** The direct children of a process (Postgres backends and auxiliaries of the postmaster). */
function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)])
      .toString()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

function signal(pids: readonly number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      /* already gone */
    }
  }
}

export interface PrivateStackOptions {
  /** Fleet simulator boot time of new VMs (FLEET_BOOT_MS). */
  fleetBootMs?: number;
  /** Extra environment for the worker process. */
  workerEnv?: Record<string, string>;
  /** Extra environment for the API process. */
  apiEnv?: Record<string, string>;
  /** A second API process and a second worker on the same services (`api2`, `worker2`). */
  replicas?: boolean;
  /** Keep the directory (data and logs) after stop(), for debugging. */
  keepDir?: boolean;
  /** Run the API, worker and simulator from this compiled build (`npm run build -- DIR`) on plain node. */
  compiledDir?: string;
}

export interface PrivateStack {
  readonly dir: string;
  readonly postgres: PostgresPart;
  readonly nats: NatsPart;
  readonly temporal: TemporalPart;
  readonly fleet: ServiceProcess;
  readonly worker: ServiceProcess;
  readonly api: ServiceProcess;
  readonly apiUrl: string;
  /** With `replicas`: the second API (on `api2Url`) and the second worker. */
  readonly replicas: { api: ServiceProcess; apiUrl: string; worker: ServiceProcess } | null;
  readonly fleetUrl: string;
  readonly natsUrl: string;
  readonly natsStream: string;
  readonly natsSubjectPrefix: string;
  readonly temporalAddress: string;
  readonly taskQueue: string;
  /** The service login (vm_tenant_app) on the private cluster. */
  readonly databaseUrl: string;
  /** The superuser on the private cluster (migrations, checks). */
  readonly migrationDatabaseUrl: string;
  readonly adminToken: string;
  /** Superuser connection for checks; fails while Postgres is stopped, like everyone else's. */
  readonly db: Kysely<Database>;
  /** A Temporal client of the private server (reconnects after a Temporal restart). */
  temporalClient(): Promise<Client>;
  /** The last lines a part wrote. */
  tail(part: string, lines?: number): string;
  /**
   * Sets (null: clears) the fault point of one process (`api`, `api2`, `worker`, `worker2`; see
   * src/testing/fault-point.ts), from its next start on; processes given the same `latch` file fire once between them.
   */
  setFaultPoint(part: string, spec: string | null, latch?: string): void;
  stop(): Promise<void>;
}

/** Appends a part's output to its log file and keeps the last lines in memory. */
class PartLog {
  private readonly stream: WriteStream;
  private readonly recent: string[] = [];
  constructor(file: string) {
    this.stream = createWriteStream(file, { flags: 'a' });
  }
  line = (line: string): void => {
    this.recent.push(line);
    if (this.recent.length > 400) this.recent.shift();
    this.stream.write(`${line}\n`);
  };
  tail(lines: number): string {
    return this.recent.slice(-lines).join('\n');
  }
  close(): Promise<void> {
    return new Promise((resolve) => this.stream.end(resolve));
  }
}

interface RunResult {
  code: number | null;
  output: string;
}

/** Runs a command to its end (resolving on exit, not on closed pipes: pg_ctl leaves a daemon behind). */
function run(command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, output }));
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A PostgreSQL cluster of its own: initdb into the stack directory, pg_ctl on a free port. initdb
 * and the server refuse to run as root, so as root they run as the `postgres` system user
 * (runuser) in a directory that user owns.
 */
export class PostgresPart implements StackPart, PausablePart {
  readonly name = 'postgres';
  private readonly dataDir: string;
  private readonly logFile: string;
  private running = false;
  private readonly binDir: string;
  private readonly asPostgres: boolean;

  constructor(
    private readonly dir: string,
    readonly port: number,
  ) {
    this.dataDir = path.join(dir, 'data');
    this.logFile = path.join(dir, 'postgres.log');
    this.binDir = PostgresPart.findBinDir();
    this.asPostgres = process.getuid?.() === 0;
  }

  /** The newest /usr/lib/postgresql/<version>/bin that has initdb. */
  static findBinDir(): string {
    const base = '/usr/lib/postgresql';
    const versions = existsSync(base)
      ? readdirSync(base)
          .filter((v) => existsSync(path.join(base, v, 'bin', 'initdb')))
          .sort((a, b) => Number(b) - Number(a))
      : [];
    if (versions.length === 0) throw new Error(`no PostgreSQL server binaries under ${base} (initdb not found)`);
    return path.join(base, versions[0]!, 'bin');
  }

  url(user: string, database = 'vm_tenant'): string {
    return `postgres://${user}@127.0.0.1:${this.port}/${database}`;
  }

  private exec(tool: string, args: readonly string[]): Promise<RunResult> {
    const binary = path.join(this.binDir, tool);
    return this.asPostgres ? run('runuser', ['-u', 'postgres', '--', binary, ...args]) : run(binary, args);
  }

  async init(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    if (this.asPostgres) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(this.dir, uid, gid);
      // mkdtemp makes the stack directory 0700: let the postgres user reach its own directory inside.
      chmodSync(path.dirname(this.dir), 0o711);
    }
    const result = await this.exec('initdb', ['-D', this.dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    if (result.code !== 0) throw new Error(`initdb failed (${result.code}):\n${result.output}`);
  }

  isRunning(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    // fsync and full-page writes are off: these tests kill processes, never the machine, and the
    // kernel keeps what was written. synchronous_commit stays on: with it off, a commit is answered
    // before its WAL is written, and a SIGKILL of Postgres loses transactions already acknowledged
    // (a spawn answered 202 whose row is gone), which is not the durability production runs with.
    const serverOptions = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
    const result = await this.exec('pg_ctl', ['-D', this.dataDir, '-o', serverOptions, '-l', this.logFile, '-w', '-t', '60', 'start']);
    if (result.code !== 0) throw new Error(`pg_ctl start failed (${result.code}):\n${result.output}\n${this.logTail()}`);
    this.running = true;
  }

  async stop(): Promise<void> {
    const result = await this.exec('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '60', 'stop']);
    if (result.code !== 0 && !/Is server running\?/.test(result.output)) throw new Error(`pg_ctl stop failed (${result.code}):\n${result.output}`);
    this.running = false;
  }

  private postmasterPid(): number | null {
    const pidFile = path.join(this.dataDir, 'postmaster.pid');
    return existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').split('\n')[0]) : null;
  }

  /** SIGKILL of the postmaster and every backend (a lone postmaster kill leaves backends holding shared memory). */
  async kill(): Promise<void> {
    const pid = this.postmasterPid();
    if (pid !== null) {
      const all = [pid, ...childPids(pid)];
      signal(all, 'SIGKILL');
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && all.some((p) => isAlive(p))) await sleep(50);
    }
    this.running = false;
  }

  /** SIGSTOP of the postmaster and every backend: connections stay open, nothing answers, nothing new connects. */
  pause(): void {
    const pid = this.postmasterPid();
    if (pid !== null) signal([pid, ...childPids(pid)], 'SIGSTOP');
  }

  resume(): void {
    const pid = this.postmasterPid();
    if (pid !== null) signal([pid, ...childPids(pid)], 'SIGCONT');
  }

  async restart(): Promise<void> {
    if (this.running) await this.stop();
    await this.start();
  }

  logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '';
    }
  }
}

/** A nats-server with JetStream, storing in the stack directory (a restart keeps the stream). */
export class NatsPart implements StackPart {
  readonly name = 'nats';
  private child: ManagedChild | null = null;

  constructor(
    private readonly storeDir: string,
    readonly port: number,
    private readonly log: PartLog,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  isRunning(): boolean {
    return this.child !== null && !this.child.hasExited();
  }

  async start(): Promise<void> {
    const binary = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';
    this.child = spawnManaged('nats', binary, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir], { onLine: this.log.line });
    await waitUntilReady(this.child, acceptsTcp(this.port), 'nats-server', 15_000);
  }

  async stop(): Promise<void> {
    await this.child?.stop(10_000);
  }

  async kill(): Promise<void> {
    await this.child?.kill();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/** A Temporal dev server on a SQLite file: stopped or killed, it restarts on the same state and port. */
export class TemporalPart implements StackPart, PausablePart {
  readonly name = 'temporal';
  private server: TemporalDevServer | null = null;

  constructor(
    private readonly temporalBin: string,
    private readonly dbFilename: string,
    readonly port: number,
    private readonly log: PartLog,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  isRunning(): boolean {
    return this.server !== null && !this.server.process.hasExited();
  }

  async start(): Promise<void> {
    this.server = await startTemporalDevServer({
      temporalBin: this.temporalBin,
      headless: true,
      port: this.port,
      dbFilename: this.dbFilename,
      onLine: this.log.line,
      readyTimeoutMs: 90_000,
    });
  }

  async stop(): Promise<void> {
    await this.server?.stop(15_000);
  }

  async kill(): Promise<void> {
    await this.server?.process.kill();
  }

  pause(): void {
    const pid = this.server?.process.pid;
    if (pid !== undefined) signal([pid, ...childPids(pid)], 'SIGSTOP');
  }

  resume(): void {
    const pid = this.server?.process.pid;
    if (pid !== undefined) signal([pid, ...childPids(pid)], 'SIGCONT');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

/**
 * Starts every part, in dependency order, and migrates the private database. Parts that fail to
 * start stop the ones already running.
 */
export async function startPrivateStack(options: PrivateStackOptions = {}): Promise<PrivateStack> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-fault-'));
  mkdirSync(path.join(dir, 'logs'));
  mkdirSync(path.join(dir, 'nats'));
  mkdirSync(path.join(dir, 'data'));
  const logs = new Map<string, PartLog>();
  const logOf = (name: string): PartLog => {
    let log = logs.get(name);
    if (!log) {
      log = new PartLog(path.join(dir, 'logs', `${name}.log`));
      logs.set(name, log);
    }
    return log;
  };

  const [pgPort, natsPort, temporalPort, fleetPort, apiPort, api2Port, temporalBin] = await Promise.all([
    getFreePort(),
    getFreePort(),
    getFreePort(),
    getFreePort(),
    getFreePort(),
    getFreePort(),
    ensureTemporalBinary(),
  ]);
  const postgres = new PostgresPart(path.join(dir, 'pg'), pgPort);
  const nats = new NatsPart(path.join(dir, 'nats'), natsPort, logOf('nats'));
  const temporal = new TemporalPart(temporalBin, path.join(dir, 'temporal.sqlite'), temporalPort, logOf('temporal'));
  const runId = path
    .basename(dir)
    .replace(/[^a-zA-Z0-9]/g, '')
    .slice(-8)
    .toLowerCase();
  const adminToken = generateToken();
  const taskQueue = `vm-tenant-fault-${runId}`;
  const natsStream = 'VM_TENANT';
  const natsSubjectPrefix = 'vmtenant';

  // Replicas share everything but their ports; no process of the stack binds the fixed metrics ports.
  const noMetrics = { API_METRICS_PORT: '0', WORKER_METRICS_PORT: '0', TEMPORAL_SDK_METRICS_PORT: '0' };
  const replicaServices: StackService[] = [
    { kind: 'worker', name: 'worker2', env: { ...noMetrics, ...options.workerEnv } },
    { kind: 'api', name: 'api2', env: { ...noMetrics, PORT: String(api2Port), ...options.apiEnv } },
  ];
  const parts: StackService[] = [
    { kind: 'fleet', env: { FLEET_STATE_FILE: path.join(dir, 'fleet-state.json'), FLEET_BOOT_MS: String(options.fleetBootMs ?? 100) } },
    { kind: 'worker', env: { ...options.workerEnv } },
    { kind: 'api', env: { PORT: String(apiPort), ...options.apiEnv } },
    ...(options.replicas ? replicaServices : []),
  ];
  // Each process's own environment, read again at its every start (setFaultPoint changes it).
  const partEnv = new Map(parts.map((part) => [part.name ?? part.kind, part.env!]));
  const services = new DevStack({
    env: stackEnv({
      databaseUrl: postgres.url('vm_tenant_app'),
      migrationDatabaseUrl: postgres.url('postgres'),
      natsUrl: nats.url,
      natsStream,
      natsSubjectPrefix,
      temporalAddress: temporal.address,
      taskQueue,
      fleetPort,
      adminToken,
      dataDir: path.join(dir, 'data'),
      logLevel: 'info',
    }),
    services: parts.map((part) => ({ ...part, onLine: logOf(part.name ?? part.kind).line })),
    processes: { compiledDir: options.compiledDir },
  });
  const replicas = options.replicas ? { apiUrl: services.service('api2').url, api: services.service('api2'), worker: services.service('worker2') } : null;
  const apiUrl = services.service('api').url;

  // The checks' own connection; a stopped server must not crash the test process.
  const checkPool = new pg.Pool({ connectionString: postgres.url('postgres'), max: 4 });
  checkPool.on('error', () => undefined);
  checkPool.on('connect', (c) => c.on('error', () => undefined));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: checkPool }) });
  let connection: Connection | null = null;
  let client: Client | null = null;

  const stack: PrivateStack = {
    dir,
    postgres,
    nats,
    temporal,
    fleet: services.service('fleet'),
    worker: services.service('worker'),
    api: services.service('api'),
    apiUrl,
    replicas,
    fleetUrl: services.service('fleet').url,
    natsUrl: nats.url,
    natsStream,
    natsSubjectPrefix,
    temporalAddress: temporal.address,
    taskQueue,
    databaseUrl: postgres.url('vm_tenant_app'),
    migrationDatabaseUrl: postgres.url('postgres'),
    adminToken,
    db,
    setFaultPoint(part, spec, latch) {
      const env = partEnv.get(part);
      if (!env) throw new Error(`no process ${part} in this stack`);
      delete env.VM_TENANT_FAULT_POINT;
      delete env.VM_TENANT_FAULT_POINT_LATCH;
      if (spec !== null) env.VM_TENANT_FAULT_POINT = spec;
      if (spec !== null && latch) env.VM_TENANT_FAULT_POINT_LATCH = latch;
    },
    async temporalClient() {
      if (client && connection) {
        try {
          await connection.workflowService.getSystemInfo({});
          return client;
        } catch {
          await connection.close().catch(() => undefined);
        }
      }
      connection = await Connection.connect({ address: temporal.address });
      client = new Client({ connection });
      return client;
    },
    tail(part, lines = 60) {
      if (part === 'postgres') return postgres.logTail();
      return logs.get(part)?.tail(lines) ?? '';
    },
    async stop() {
      // Our processes first (they hold connections to the services), then the services.
      await services.stop(30_000).catch(() => undefined);
      await connection?.close().catch(() => undefined);
      await db.destroy().catch(() => undefined);
      await Promise.allSettled([temporal.stop(), nats.stop(), postgres.isRunning() ? postgres.stop() : Promise.resolve()]);
      await Promise.all([...logs.values()].map((log) => log.close()));
      if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    await postgres.init();
    await Promise.all([
      (async () => {
        await postgres.start();
        await migrateToLatest(postgres.url('postgres'));
      })(),
      nats.start(),
      temporal.start(),
    ]);
    await services.start();
    // OpenAPI response check (openapi-response-check.ts): every answer of these APIs is checked against their document.
    for (const url of [apiUrl, ...(replicas ? [replicas.apiUrl] : [])]) await checkResponsesFrom(url);
  } catch (error) {
    await stack.stop().catch(() => undefined);
    throw error;
  }
  return stack;
}

/**
 * The private stack of one fault-test file, for its tests: started before them (`options` may build
 * what the stack runs first), stopped after them. The object returned stands for the stack once it
 * is started; touching it before (at the file's top level) throws.
 */
export function usePrivateStack(
  options: PrivateStackOptions | (() => PrivateStackOptions),
  hooks: { startTimeoutMs?: number; beforeStop?: (stack: PrivateStack) => void; afterStop?: () => void } = {},
): PrivateStack {
  let started: PrivateStack | null = null;
  beforeAll(async () => {
    started = await startPrivateStack(typeof options === 'function' ? options() : options);
  }, hooks.startTimeoutMs ?? 180_000);
  afterAll(async () => {
    if (started) hooks.beforeStop?.(started);
    await started?.stop();
    hooks.afterStop?.();
  }, 60_000);
  return new Proxy({} as PrivateStack, {
    get(_, key) {
      if (!started) throw new Error(`the private stack is not started yet (reading ${String(key)}): use it inside a test or hook`);
      const value: unknown = Reflect.get(started, key);
      return typeof value === 'function' ? value.bind(started) : value;
    },
  });
}
