import pino from 'pino';
import { loadSimulatorConfig } from './simulator-config';
import { startSimulator } from './start-simulator';

/**
 * Entry point of the fleet simulator: `node --import tsx src/fleet-simulator/server.ts`.
 * Prints one JSON line with the URL once listening; exits 0 after a graceful stop on SIGTERM/SIGINT.
 */
async function main(): Promise<void> {
  const log = pino({ name: 'fleet-simulator' });
  let config;
  try {
    config = loadSimulatorConfig(process.env);
  } catch (err) {
    log.fatal({ err }, 'invalid fleet simulator configuration');
    process.exit(1);
  }
  const simulator = await startSimulator({ config });
  log.info({ url: simulator.url, state_file: config.stateFile, hosts: config.hosts }, 'fleet simulator listening');

  const stop = (signal: NodeJS.Signals): void => {
    log.info({ signal }, 'fleet simulator stopping');
    simulator.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'fleet simulator failed to stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'fleet simulator failed to start', err: String(err) }));
  process.exit(1);
});
