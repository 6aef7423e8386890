import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/api/app';
import { createDatabase } from '../../src/db/database';
import { createLogger } from '../../src/logging/logger';
import type { TenantWorkflowGateway } from '../../src/tenants/tenant-workflow-gateway';
import { listExpressRoutes } from '../helpers/express-routes';
import { testEnv } from '../helpers/test-env';

describe('OpenAPI document', () => {
  const db = createDatabase(testEnv().databaseUrl, { max: 1 });
  // Only the route table and /openapi.json are exercised here: no workflow is ever called.
  const app = createApp({ db, tenantWorkflows: {} as TenantWorkflowGateway, log: createLogger({ name: 'test', level: 'silent' }), readiness: {}, trustedProxies: [] });
  const server = createServer(app);
  let doc: any;

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const response = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/openapi.json`);
    expect(response.status).toBe(200);
    doc = await response.json();
  });
  afterAll(async () => {
    server.close();
    await db.destroy();
  });

  const documented = (): string[] =>
    Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`),
    );

  test('when the document is served, then it is OpenAPI 3.1 with a bearer scheme', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  test('when compared with the Express route table, then every route is documented and every documented route exists', () => {
    const routes = listExpressRoutes(app).map((r) => `${r.method} ${r.path}`);
    expect(documented().sort()).toEqual([...new Set(routes)].sort());
  });

  test('when a route validates a body, then the document carries that same schema (bounds included)', () => {
    const createTenant = doc.paths['/v1/tenants'].post.requestBody.content['application/json'].schema;
    expect(createTenant.required).toEqual(expect.arrayContaining(['tenant_id', 'display_name', 'max_vms', 'storage_quota_gb', 'api_rate_limit_rpm']));
    expect(createTenant.properties.max_vms).toMatchObject({ type: 'integer', minimum: 1, maximum: 100000 });
    expect(createTenant.properties.tenant_id.pattern).toBe('^[a-z][a-z0-9-]{1,61}[a-z0-9]$');
    expect(createTenant.additionalProperties).toBe(false);
    const spawn = doc.paths['/v1/vms'].post;
    expect(spawn.requestBody.content['application/json'].schema.properties.storage_gb).toMatchObject({ type: 'integer', minimum: 1 });
    expect(spawn.parameters.map((p: { name: string }) => p.name)).toContain('Idempotency-Key');
    const refusals = spawn.responses['429'].content['application/problem+json'].schema.anyOf as Array<{ properties: Record<string, { const?: string; enum?: string[] }> }>;
    const quotaExceeded = refusals.find((schema) => schema.properties.code?.const === 'quota_exceeded');
    expect(quotaExceeded?.properties.limit?.enum).toEqual(['max_vms', 'storage_quota_gb']);
    expect(refusals.map((schema) => schema.properties.code?.const)).toContain('in_flight_limit');
  });

  test('when a route takes path parameters, then each is declared', () => {
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const op of Object.values(ops)) {
        const declared = (op.parameters ?? []).filter((p: { in: string }) => p.in === 'path').map((p: { name: string }) => p.name);
        expect(declared).toEqual(names);
      }
    }
  });
});
