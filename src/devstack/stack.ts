import { migrateToLatest } from '../db/migrate';
import type { ChildExit, ManagedChild } from './child-process';
import { ServiceProcess, type ServiceKind, type ServiceProcessOptions } from './service-process';
import { ensureTemporalBinary } from './temporal-binary';
import { startTemporalDevServer, type TemporalDevServer, type TemporalDevServerOptions } from './temporal-dev-server';

export interface StackService {
  kind: ServiceKind;
  /** Its label (`api2`); defaults to the kind. */
  name?: string;
  /** Added to the stack's environment for this process only. */
  env?: NodeJS.ProcessEnv;
  nodeArgs?: readonly string[];
  onLine?: ServiceProcessOptions['onLine'];
}

/** What a launcher asks for: everything else is the same for `npm start`, the tests and the benchmark. */
export interface StackPlan {
  /** The environment every process shares; a Temporal dev server the stack starts fills in TEMPORAL_ADDRESS. */
  env: NodeJS.ProcessEnv;
  /** Starts a Temporal dev server; without it, the processes use env.TEMPORAL_ADDRESS. */
  temporal?: Omit<TemporalDevServerOptions, 'temporalBin' | 'onSpawn'>;
  /** Migrates this database (created when missing) before any service starts. */
  migrate?: string;
  services: readonly StackService[];
  /** How every service process runs: its output, process group, readiness deadline. */
  processes?: Pick<ServiceProcessOptions, 'onLine' | 'keepLines' | 'detached' | 'readyTimeoutMs' | 'compiledDir'>;
  /** A part (`temporal` or a service's name) exited while the stack was not stopping. */
  onUnexpectedExit?: (name: string, exit: ChildExit) => void;
}

export class StackStoppedError extends Error {
  override readonly name = 'StackStoppedError';
}

/**
 * The one stack launcher: Temporal and the migrations at once, then the fleet simulator, then the
 * workers and APIs, each waited for by ServiceProcess's readiness check. A part that fails to start
 * stops the parts already running; stop() during start() stops every process spawned so far.
 */
export class DevStack {
  /** The shared environment; TEMPORAL_ADDRESS is filled in once the stack's own Temporal runs. */
  readonly env: NodeJS.ProcessEnv;
  readonly services: readonly ServiceProcess[];
  private ownTemporal: TemporalDevServer | undefined;
  private temporalProcess: ManagedChild | undefined;
  private stopping = false;

  constructor(private readonly plan: StackPlan) {
    this.env = { ...plan.env };
    this.services = plan.services.map(
      (service) =>
        new ServiceProcess({
          ...plan.processes,
          kind: service.kind,
          name: service.name,
          nodeArgs: service.nodeArgs,
          onLine: service.onLine ?? plan.processes?.onLine,
          env: () => ({ ...this.env, ...service.env }),
        }),
    );
  }

  get temporal(): TemporalDevServer | undefined {
    return this.ownTemporal;
  }

  service(name: string): ServiceProcess {
    const found = this.services.find((service) => service.name === name);
    if (!found) throw new Error(`the stack runs no service named ${name}`);
    return found;
  }

  async start(): Promise<this> {
    const { plan } = this;
    const startTemporal = async (options: NonNullable<StackPlan['temporal']>) => {
      const temporalBin = await ensureTemporalBinary();
      this.checkNotStopping();
      this.ownTemporal = await startTemporalDevServer({ ...options, temporalBin, onSpawn: (child) => this.watch('temporal', (this.temporalProcess = child)) });
      Object.assign(this.env, { TEMPORAL_ADDRESS: this.ownTemporal.address, TEMPORAL_NAMESPACE: this.ownTemporal.namespace });
    };
    try {
      await Promise.all([plan.temporal && startTemporal(plan.temporal), plan.migrate && migrateToLatest(plan.migrate)]);
      this.checkNotStopping();
      // The fleet simulator first (workers call it), then every other service at once.
      for (const group of [this.services.filter((service) => service.kind === 'fleet'), this.services.filter((service) => service.kind !== 'fleet')]) {
        for (const service of group) this.watch(service.name, service.launch());
        await Promise.all(group.map((service) => service.waitUntilReady()));
      }
      this.checkNotStopping();
    } catch (error) {
      // What a stop in the middle makes fail (a dev server killed before it was ready) is the stop.
      const stopped = this.stopping;
      await this.stop();
      throw stopped && !(error instanceof StackStoppedError) ? new StackStoppedError('the stack was stopped while it started', { cause: error }) : error;
    }
    return this;
  }

  /** The APIs, then the workers, then the fleet simulator, then Temporal. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.stopping = true;
    // The APIs first (no new work), then the workers (they finish theirs), then the fleet simulator.
    for (const kind of ['api', 'worker', 'fleet'] as const) {
      await Promise.all(this.services.filter((service) => service.kind === kind).map((service) => service.terminate(timeoutMs)));
    }
    await this.temporalProcess?.stop(10_000);
  }

  /** SIGKILL of every process still running, for a launcher that exits some other way. */
  killAll(): void {
    for (const child of [...this.services.map((service) => service.process), this.temporalProcess]) void child?.kill();
  }

  private watch(name: string, child: ManagedChild): void {
    if (this.stopping) void child.stop(5_000);
    void child.exited.then((exit) => {
      if (!this.stopping) this.plan.onUnexpectedExit?.(name, exit);
    });
  }

  private checkNotStopping(): void {
    if (this.stopping) throw new StackStoppedError('the stack was stopped while it started');
  }
}

export function startStack(plan: StackPlan): Promise<DevStack> {
  return new DevStack(plan).start();
}
