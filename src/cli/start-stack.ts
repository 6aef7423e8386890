/**
 * `npm start`: the whole local stack in one terminal.
 *
 *   Temporal dev server (SQLite at <DATA_DIR>/temporal.db, UI on 8233) unless
 *   TEMPORAL_ADDRESS is set -> check Postgres and NATS -> migrations -> fleet simulator
 *   unless FLEET_URL is set -> worker and API -> wait for the API's /healthz.
 *
 * Ctrl-C / SIGTERM stops the API and worker, then the fleet simulator, then Temporal,
 * and exits 0. A child that dies on its own brings the stack down with exit code 1.
 * Children run in their own process groups so that a Ctrl-C reaches only this process,
 * which then stops them in that order.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type Config } from '../config/config';
import { migrateToLatest } from '../db/migrate';
import { describeExit, type ManagedChild } from '../devstack/child-process';
import { isPortFree } from '../devstack/free-port';
import { checkServices } from '../devstack/service-checks';
import { ensureTemporalBinary } from '../devstack/temporal-binary';
import { ServiceProcess, startServices, stopServices } from '../devstack/service-process';
import { startTemporalDevServer, type TemporalDevServer } from '../devstack/temporal-dev-server';

const TEMPORAL_DEV_PORT = 7233;
const TEMPORAL_UI_PORT = 8233;

class StackError extends Error {
  override readonly name = 'StackError';
}

/** Stopping was requested while starting: unwinds main() without an error message. */
class StackAborted extends Error {
  override readonly name = 'StackAborted';
}

const say = (message: string): void => {
  process.stdout.write(`[stack] ${message}\n`);
};

interface Running {
  temporal?: TemporalDevServer;
  services: ServiceProcess[];
}

class Stack {
  private readonly running: Running = { services: [] };
  private stopping: Promise<never> | undefined;
  private stoppingSince = 0;

  get isStopping(): boolean {
    return this.stopping !== undefined;
  }

  /** Registers a started piece; when stopping already began, it is stopped at once. */
  track(piece: TemporalDevServer | ServiceProcess, label: string): void {
    let proc: ManagedChild;
    if (piece instanceof ServiceProcess) {
      this.running.services.push(piece);
      proc = piece.process!;
    } else {
      this.running.temporal = piece;
      proc = piece.process;
    }
    void proc.exited.then((exit) => {
      if (!this.isStopping) void this.stop(1, `${label} ${describeExit(exit)} unexpectedly; stopping the stack.`);
    });
    if (this.isStopping) void proc.stop(5_000);
  }

  /** Stops everything in order and exits the process. Repeated calls join the first. */
  stop(exitCode: number, reason: string): Promise<never> {
    if (this.stopping) {
      // A Ctrl-C reaches us both from the terminal and forwarded by npm: stay quiet then.
      if (Date.now() - this.stoppingSince > 1_000) say('still stopping, waiting for the children to exit…');
      return this.stopping;
    }
    this.stoppingSince = Date.now();
    (exitCode === 0 ? process.stdout : process.stderr).write(`[stack] ${reason}\n`);
    this.stopping = (async () => {
      await stopServices(this.running.services);
      await this.running.temporal?.stop(10_000);
      say(exitCode === 0 ? 'stopped.' : 'stopped after a failure.');
      process.exit(exitCode);
    })();
    return this.stopping;
  }

  /** Last resort when this process exits some other way: no child outlives it. */
  killAll(): void {
    const { services, temporal } = this.running;
    for (const child of [...services.map((service) => service.process), temporal?.process]) {
      if (child?.pid !== undefined && !child.hasExited()) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
  }

  checkpoint(): void {
    if (this.isStopping) throw new StackAborted();
  }
}

async function requireFreePort(port: number, what: string, hint: string): Promise<void> {
  if (!(await isPortFree(port))) {
    throw new StackError(`Port ${port} (${what}) is already in use. ${hint}`);
  }
}

function sameHost(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}

async function startStack(stack: Stack, env: NodeJS.ProcessEnv, config: Config): Promise<void> {
  // Whether the user points us at their own Temporal / fleet is a choice of this CLI,
  // so it looks at what was set, not at the defaults loadConfig filled in.
  const ownTemporal = !env.TEMPORAL_ADDRESS;
  const ownFleet = !env.FLEET_URL;
  const childEnv: NodeJS.ProcessEnv = { ...env, DATA_DIR: config.dataDir };
  await mkdir(config.dataDir, { recursive: true });

  say('checking PostgreSQL and NATS…');
  const temporalBin = ownTemporal ? ensureTemporalBinary() : undefined;
  temporalBin?.catch(() => undefined); // awaited below; do not report it twice
  await checkServices({ postgresUrl: config.migrationDatabaseUrl, natsUrl: config.natsUrl });
  stack.checkpoint();

  await requireFreePort(config.port, 'API', 'Is another `npm start` running? Set PORT to use another port.');
  if (ownFleet) await requireFreePort(config.fleetPort, 'fleet simulator', 'Set FLEET_PORT, or FLEET_URL to use a running simulator.');

  let temporalAddress = config.temporalAddress;
  let temporalUi: string | undefined;
  if (ownTemporal) {
    const bin = await temporalBin!;
    await requireFreePort(TEMPORAL_DEV_PORT, 'Temporal frontend', 'Is a Temporal server already running? Set TEMPORAL_ADDRESS to use it.');
    await requireFreePort(TEMPORAL_UI_PORT, 'Temporal UI', 'Is a Temporal server already running? Set TEMPORAL_ADDRESS to use it.');
    stack.checkpoint();
    say(`starting the Temporal dev server (state in ${path.join(config.dataDir, 'temporal.db')})…`);
    const temporal = await startTemporalDevServer({
      temporalBin: bin,
      port: TEMPORAL_DEV_PORT,
      uiPort: TEMPORAL_UI_PORT,
      dbFilename: path.join(config.dataDir, 'temporal.db'),
      detached: true,
    });
    stack.track(temporal, 'the Temporal dev server');
    temporalAddress = temporal.address;
    temporalUi = temporal.uiUrl;
    childEnv.TEMPORAL_ADDRESS = temporalAddress;
  } else {
    say(`using the Temporal server at ${temporalAddress} (TEMPORAL_ADDRESS)`);
  }
  stack.checkpoint();

  say('running database migrations…');
  await migrateToLatest(config.migrationDatabaseUrl);
  stack.checkpoint();

  let fleetUrl = config.fleetUrl;
  const services: ServiceProcess[] = [];
  if (ownFleet) {
    childEnv.FLEET_PORT = String(config.fleetPort);
    childEnv.FLEET_STATE_FILE = env.FLEET_STATE_FILE || path.join(config.dataDir, 'fleet-state.json');
    fleetUrl = `http://127.0.0.1:${config.fleetPort}`;
    childEnv.FLEET_URL = fleetUrl;
    services.push(new ServiceProcess({ kind: 'fleet', env: () => childEnv, detached: true }));
  } else {
    say(`using the fleet controller at ${sameHost(fleetUrl)} (FLEET_URL)`);
  }
  const api = new ServiceProcess({ kind: 'api', env: () => childEnv, detached: true });
  services.push(new ServiceProcess({ kind: 'worker', env: () => childEnv, detached: true }), api);
  const labels: Record<string, string> = { fleet: 'the fleet simulator', worker: 'the worker', api: 'the API' };
  await startServices(services, (service) => stack.track(service, labels[service.kind]!));
  stack.checkpoint();

  const apiUrl = api.url;
  const lines = [
    '',
    'vm-tenant is running:',
    `  API            ${apiUrl}`,
    `  Temporal       ${temporalAddress}${temporalUi ? `   (UI ${temporalUi})` : ''}`,
    `  Fleet          ${sameHost(fleetUrl)}${ownFleet ? '   (simulator)' : ''}`,
    config.adminToken
      ? '  Admin token    from ADMIN_TOKEN'
      : `  Admin token    in ${path.join(config.dataDir, 'admin-token')} (written by the API on first start)`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

async function main(): Promise<void> {
  const env = process.env;
  const stack = new Stack();
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => void stack.stop(0, `${signal} received; stopping…`));
  }
  process.on('exit', () => stack.killAll());

  try {
    await startStack(stack, env, loadConfig(env));
  } catch (error) {
    if (error instanceof StackAborted || stack.isStopping) return;
    const message = error instanceof Error ? error.message : String(error);
    await stack.stop(1, `could not start the stack:\n${message}`);
  }
}

void main();
