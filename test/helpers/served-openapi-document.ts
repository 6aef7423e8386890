import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/api/app';
import { createDatabase } from '../../src/db/database';
import { createLogger } from '../../src/logging/logger';
import type { TenantWorkflowGateway } from '../../src/tenants/tenant-workflow-gateway';
import { testEnv } from './test-env';

/**
 * GET /openapi.json from the real app on a random port. Only that public route is called: no
 * workflow runs and the database pool never opens a connection.
 */
export async function fetchServedOpenApiDocument(): Promise<unknown> {
  const db = createDatabase(testEnv().databaseUrl, { max: 1 });
  const app = createApp({ db, tenantWorkflows: {} as TenantWorkflowGateway, log: createLogger({ name: 'test', level: 'silent' }), readiness: {}, trustedProxies: [] });
  const server = createServer(app);
  try {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/openapi.json`, { signal: AbortSignal.timeout(10_000) });
    if (response.status !== 200) throw new Error(`GET /openapi.json answered ${response.status}`);
    return await response.json();
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await db.destroy();
  }
}
