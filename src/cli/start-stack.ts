/**
 * `npm start`: the whole local stack in one terminal.
 *
 *   check Postgres, NATS and the ports -> the stack launcher (src/devstack/stack.ts): Temporal dev
 *   server (SQLite at <DATA_DIR>/temporal.db, UI on 8233) unless TEMPORAL_ADDRESS is set, and the
 *   migrations -> fleet simulator unless FLEET_URL is set -> worker and API, each waited for.
 *
 * Ctrl-C / SIGTERM stops the API and worker, then the fleet simulator, then Temporal,
 * and exits 0. A child that dies on its own brings the stack down with exit code 1.
 * Children run in their own process groups so that a Ctrl-C reaches only this process,
 * which then stops them in that order.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../config/config';
import { describeExit } from '../devstack/child-process';
import { isPortFree } from '../devstack/free-port';
import { checkServices } from '../devstack/service-checks';
import { DevStack, StackStoppedError } from '../devstack/stack';

const TEMPORAL_DEV_PORT = 7233;
const TEMPORAL_UI_PORT = 8233;
const LABELS: Record<string, string> = { temporal: 'the Temporal dev server', fleet: 'the fleet simulator', worker: 'the worker', api: 'the API' };

const say = (message: string): void => {
  process.stdout.write(`[stack] ${message}\n`);
};

async function requireFreePort(port: number, what: string, hint: string): Promise<void> {
  if (!(await isPortFree(port))) throw new Error(`Port ${port} (${what}) is already in use. ${hint}`);
}

function sameHost(url: string): string {
  const parsed = new URL(url);
  return `${parsed.protocol}//${parsed.host}`;
}

async function main(): Promise<void> {
  const env = process.env;
  const config = loadConfig(env);
  // Whether the user points us at their own Temporal / fleet is a choice of this CLI,
  // so it looks at what was set, not at the defaults loadConfig filled in.
  const ownTemporal = !env.TEMPORAL_ADDRESS;
  const ownFleet = !env.FLEET_URL;
  const dbFilename = path.join(config.dataDir, 'temporal.db');
  const fleetEnv = {
    FLEET_PORT: String(config.fleetPort),
    FLEET_STATE_FILE: env.FLEET_STATE_FILE || path.join(config.dataDir, 'fleet-state.json'),
    FLEET_URL: `http://127.0.0.1:${config.fleetPort}`,
  };
  const stack = new DevStack({
    env: { ...env, DATA_DIR: config.dataDir, ...(ownFleet ? fleetEnv : {}) },
    temporal: ownTemporal ? { port: TEMPORAL_DEV_PORT, uiPort: TEMPORAL_UI_PORT, dbFilename, detached: true } : undefined,
    migrate: config.migrationDatabaseUrl,
    services: [...(ownFleet ? [{ kind: 'fleet' as const }] : []), { kind: 'worker' }, { kind: 'api' }],
    processes: { detached: true },
    onUnexpectedExit: (name, exit) => void stop(1, `${LABELS[name] ?? name} ${describeExit(exit)} unexpectedly; stopping the stack.`),
  });

  let stopping: Promise<never> | undefined;
  let stoppingSince = 0;
  /** Stops everything in order and exits the process. Repeated calls join the first. */
  const stop = (exitCode: number, reason: string): Promise<never> => {
    if (stopping) {
      // A Ctrl-C reaches us both from the terminal and forwarded by npm: stay quiet then.
      if (Date.now() - stoppingSince > 1_000) say('still stopping, waiting for the children to exit…');
      return stopping;
    }
    stoppingSince = Date.now();
    (exitCode === 0 ? process.stdout : process.stderr).write(`[stack] ${reason}\n`);
    stopping = stack.stop().then(() => {
      say(exitCode === 0 ? 'stopped.' : 'stopped after a failure.');
      process.exit(exitCode);
    });
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void stop(0, `${signal} received; stopping…`));
  // Last resort when this process exits some other way: no child outlives it.
  process.on('exit', () => stack.killAll());

  try {
    await mkdir(config.dataDir, { recursive: true });
    say('checking PostgreSQL and NATS…');
    await checkServices({ postgresUrl: config.migrationDatabaseUrl, natsUrl: config.natsUrl });
    await requireFreePort(config.port, 'API', 'Is another `npm start` running? Set PORT to use another port.');
    if (ownFleet) await requireFreePort(config.fleetPort, 'fleet simulator', 'Set FLEET_PORT, or FLEET_URL to use a running simulator.');
    else say(`using the fleet controller at ${sameHost(config.fleetUrl)} (FLEET_URL)`);
    if (ownTemporal) {
      const hint = 'Is a Temporal server already running? Set TEMPORAL_ADDRESS to use it.';
      await requireFreePort(TEMPORAL_DEV_PORT, 'Temporal frontend', hint);
      await requireFreePort(TEMPORAL_UI_PORT, 'Temporal UI', hint);
      say(`starting the Temporal dev server (state in ${dbFilename}) and running database migrations…`);
    } else {
      say(`using the Temporal server at ${config.temporalAddress} (TEMPORAL_ADDRESS); running database migrations…`);
    }
    if (stopping) return;
    await stack.start();
  } catch (error) {
    if (error instanceof StackStoppedError || stopping) return;
    await stop(1, `could not start the stack:\n${error instanceof Error ? error.message : String(error)}`);
  }
  const lines = [
    '',
    'vm-tenant is running:',
    `  API            ${stack.service('api').url}`,
    `  Temporal       ${stack.env.TEMPORAL_ADDRESS}${stack.temporal?.uiUrl ? `   (UI ${stack.temporal.uiUrl})` : ''}`,
    `  Fleet          ${sameHost(stack.env.FLEET_URL ?? config.fleetUrl)}${ownFleet ? '   (simulator)' : ''}`,
    config.adminToken
      ? '  Admin token    from ADMIN_TOKEN'
      : `  Admin token    in ${path.join(config.dataDir, 'admin-token')} (written by the API on first start)`,
    '',
    'Press Ctrl-C to stop.',
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

main().catch((error: unknown) => {
  process.stderr.write(`[stack] could not start the stack:\n${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
