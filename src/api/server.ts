import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
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
  // The answers not yet written, so that a drain can make each one close its connection.
  const unanswered = new Set<ServerResponse>();
  let stopping = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (stopping) res.setHeader('connection', 'close');
    unanswered.add(res);
    res.once('close', () => unanswered.delete(res));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const adminToken = api.admin?.source === 'env' ? 'from ADMIN_TOKEN' : `in ${api.admin?.tokenFile}`;
  log.info({ url: `http://${config.host}:${config.port}`, admin_token: adminToken, config: describeConfig(config) }, 'api listening');

  // On SIGTERM (under Kubernetes after preStop has let the endpoint be withdrawn everywhere): stop
  // accepting, close idle keep-alive connections, answer the requests in flight with
  // `Connection: close` (so their clients go to another replica next), up to 15 s.
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal, in_flight: unanswered.size }, 'api draining: no new connections, finishing in-flight requests');
    for (const res of unanswered) if (!res.headersSent) res.setHeader('connection', 'close');
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
