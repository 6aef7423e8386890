import { createServer } from 'node:http';
import { describeConfig, loadConfig } from '../config/config';
import { startMetricsServer } from '../metrics/metrics-server';
import { buildApi } from './build-api';
import { answerClientError } from './client-error';

async function main(): Promise<void> {
  const config = loadConfig();
  const api = await buildApi(config);
  const { log } = api;
  const metricsServer = await startMetricsServer(api.metrics.registry, config.apiMetricsPort, config.host, log);

  const server = createServer(api.app);
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const adminToken = api.admin?.source === 'env' ? 'from ADMIN_TOKEN' : `in ${api.admin?.tokenFile}`;
  log.info({ url: `http://${config.host}:${config.port}`, admin_token: adminToken, config: describeConfig(config) }, 'api listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'api draining: no new connections, finishing in-flight requests');
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), 15_000).unref();
    await closed;
    metricsServer?.close();
    clearTimeout(timer);
    await api.close();
    log.info('api stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(JSON.stringify({ level: 'fatal', msg: 'api failed to start', error: error instanceof Error ? error.message : String(error) }));
  process.exit(1);
});
