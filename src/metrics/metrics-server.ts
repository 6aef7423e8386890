import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { Logger } from '../logging/logger';

/**
 * Serves `GET /metrics` on its own (internal) port, apart from the public API: per-tenant series
 * name every tenant. A taken port costs the endpoint, never the process. With `healthy`, also
 * `GET /healthz`: 200 while it answers true, else 503 (the worker's liveness probe).
 */
export async function startMetricsServer(registry: Registry, port: number, host: string, log: Logger, healthy?: () => boolean): Promise<Server | null> {
  if (port === 0) return null;
  const server = createServer((req, res) => {
    if (req.url === '/healthz' && healthy) {
      const ok = healthy();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ok ? 'ok' : 'stopped' }));
      return;
    }
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  });
  return new Promise((resolve) => {
    server.once('error', (error) => {
      // The logger names the program (its `service`): the API and the worker both serve metrics.
      log.warn({ err: error, port }, 'metrics endpoint not started');
      resolve(null);
    });
    server.listen(port, host, () => resolve(server));
  });
}
