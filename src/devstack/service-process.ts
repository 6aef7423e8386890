import path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { loadConfig } from '../config/config';
import { linePrefix, spawnManaged, type ChildExit, type ManagedChild } from './child-process';
import { answersOk, waitUntilReady } from './readiness';
import { REPO_ROOT } from './temporal-binary';

/** The programs of vm-tenant that a stack runs as processes. */
export type ServiceKind = 'api' | 'worker' | 'fleet';

const ENTRY_POINTS: Record<ServiceKind, string> = {
  api: 'src/api/server.ts',
  worker: 'src/workers/worker.ts',
  fleet: 'src/fleet-simulator/server.ts',
};

export interface ServiceProcessOptions {
  kind: ServiceKind;
  /** Its label in logs and messages (`api2`); defaults to the kind. */
  name?: string;
  /** Read at every start, so a restart can change it. */
  env: () => NodeJS.ProcessEnv;
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  keepLines?: number;
  /** Its own process group (npm start: a Ctrl-C reaches only the launcher, which stops children in order). */
  detached?: boolean;
  readyTimeoutMs?: number;
  /** Node options before the entry point (e.g. --cpu-prof, which NODE_OPTIONS does not take). */
  nodeArgs?: readonly string[];
  /** Run the compiled build in this directory (`npm run build -- DIR`) on plain node, as deployments do, instead of the sources through tsx. */
  compiledDir?: string;
}

function loopback(host: string | undefined): string {
  return !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
}

/**
 * One vm-tenant program (`node --import tsx src/...`) as a child process that can be started,
 * stopped, killed and restarted on the same settings. Ready means: the API and the fleet simulator
 * answer /healthz; Temporal lists this very worker process (its default identity, pid@host) among the
 * pollers of its task queue, whatever its log level.
 */
export class ServiceProcess {
  readonly kind: ServiceKind;
  readonly name: string;
  private child: ManagedChild | null = null;

  constructor(private readonly options: ServiceProcessOptions) {
    this.kind = options.kind;
    this.name = options.name ?? options.kind;
  }

  get process(): ManagedChild | null {
    return this.child;
  }

  /** Where the API or the fleet simulator listens (from PORT / FLEET_PORT of its environment). */
  get url(): string {
    const env = this.options.env();
    if (this.kind === 'api') return `http://${loopback(env.HOST)}:${env.PORT ?? 9221}`;
    if (this.kind === 'fleet') return `http://127.0.0.1:${env.FLEET_PORT ?? 9231}`;
    throw new Error('a worker serves no URL');
  }

  isRunning(): boolean {
    return this.child !== null && !this.child.hasExited();
  }

  /** Starts the process without waiting until it is ready. */
  launch(): ManagedChild {
    const prefix = linePrefix(this.name);
    const onLine =
      this.options.onLine ??
      ((line: string, stream: 'stdout' | 'stderr') => (stream === 'stdout' ? process.stdout : process.stderr).write(`${prefix} ${line}\n`));
    const { compiledDir } = this.options;
    const entry = compiledDir
      ? [path.join(compiledDir, ENTRY_POINTS[this.kind].replace(/^src\//, '').replace(/\.ts$/, '.js'))]
      : ['--import', 'tsx', path.join(REPO_ROOT, ENTRY_POINTS[this.kind])];
    this.child = spawnManaged(this.name, process.execPath, [...(this.options.nodeArgs ?? []), ...entry], {
      cwd: REPO_ROOT,
      env: this.options.env(),
      detached: this.options.detached,
      keepLines: this.options.keepLines ?? 400,
      onLine,
    });
    return this.child;
  }

  async waitUntilReady(): Promise<void> {
    if (!this.child) throw new Error(`${this.name} was not launched`);
    const timeoutMs = this.options.readyTimeoutMs ?? (this.kind === 'worker' ? 120_000 : 60_000);
    if (this.kind !== 'worker') return waitUntilReady(this.child, answersOk(`${this.url}/healthz`), this.name, timeoutMs);
    const config = loadConfig(this.options.env());
    const connection = Connection.lazy(config.temporal.connection);
    const identity = `${this.child.pid}@`;
    const polls = async () => {
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: config.temporalNamespace,
        taskQueue: { name: config.temporalTaskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      return pollers.some((poller) => poller.identity?.startsWith(identity));
    };
    try {
      await waitUntilReady(this.child, polls, this.name, timeoutMs);
    } finally {
      await connection.close();
    }
  }

  async start(): Promise<void> {
    this.launch();
    await this.waitUntilReady();
  }

  /** SIGTERM and the exit that follows (SIGKILL after `timeoutMs`). */
  async terminate(timeoutMs = 30_000): Promise<ChildExit> {
    if (!this.child) return { code: 0, signal: null };
    return this.child.stop(timeoutMs);
  }

  async stop(): Promise<void> {
    await this.terminate();
  }

  /** SIGKILL: no shutdown code runs. */
  async kill(): Promise<void> {
    await this.child?.kill();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}
