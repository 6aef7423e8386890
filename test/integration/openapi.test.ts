import { listExpressRoutes } from '../helpers/express-routes';
import { serveApi, type ServedApi } from '../helpers/api-server';

describe('OpenAPI document', () => {
  // The API as buildApi wires it; only the route table and /openapi.json are exercised here.
  let served: ServedApi;
  let doc: any;

  beforeAll(async () => {
    served = await serveApi();
    const response = await fetch(`${served.url}/openapi.json`);
    expect(response.status).toBe(200);
    doc = await response.json();
  });
  const baseUrl = () => served.url;
  afterAll(async () => {
    await served?.close();
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
    const routes = listExpressRoutes(served.api.app).map((r) => `${r.method} ${r.path}`);
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
    const refusals = spawn.responses['429'].content['application/problem+json'].schema.anyOf as Array<{
      properties: Record<string, { const?: string; enum?: string[] }>;
    }>;
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

  const problemSchemas = (op: any, status: string): any[] => {
    const schema = op.responses[status]?.content?.['application/problem+json']?.schema;
    return schema ? (schema.anyOf ?? [schema]) : [];
  };
  const codesOf = (op: any, status: string): string[] => problemSchemas(op, status).map((schema) => schema.properties.code.const);
  const operations = (): Array<[string, any]> =>
    Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op] as [string, any]),
    );

  test('when the API refuses a scope, then the documented 403 problem carries required_scope (Schemathesis found it forbidden)', () => {
    const insufficientScope = problemSchemas(doc.paths['/v1/vms'].get, '403').find((schema) => schema.properties.code.const === 'insufficient_scope');
    expect(insufficientScope.properties.required_scope.enum).toContain('vm:read');
    expect(insufficientScope.additionalProperties).toBe(false);
  });

  test('when a VM destroy reuses an Idempotency-Key, then its 422 idempotency_key_reused is documented (Schemathesis found it missing)', () => {
    expect(codesOf(doc.paths['/v1/vms/{vm_id}'].delete, '422')).toEqual(['idempotency_key_reused']);
  });

  test('when an operation needs a token, then every answer of the middleware in front of it is documented, with its headers', () => {
    for (const [name, op] of operations().filter(([, op]) => op.security?.length)) {
      const statuses = Object.keys(op.responses);
      expect({ name, statuses }).toEqual({ name, statuses: expect.arrayContaining(['400', '401', '403', '413', '415', '429', '500', '503']) });
      expect(codesOf(op, '401').sort()).toEqual([
        'content_digest_mismatch',
        'invalid_token',
        'signature_expired',
        'signature_invalid',
        'signature_key_mismatch',
        'signature_malformed',
        'signature_replayed',
        'signature_required',
        'unauthenticated',
      ]);
      expect(op.responses['401'].headers['WWW-Authenticate'].required).toBe(true);
      expect(codesOf(op, '429')).toEqual(expect.arrayContaining(['rate_limited', 'too_many_failed_authentications']));
      const rateLimited = problemSchemas(op, '429').find((schema) => schema.properties.code.const === 'rate_limited');
      expect(rateLimited.required).toEqual(expect.arrayContaining(['limit', 'retry_after_seconds']));
      expect(problemSchemas(op, '503')[0].properties.dependency.enum).toEqual(['postgres', 'temporal']);
    }
  });

  test('when a problem is documented, then its status and code are exact and it allows no other member', () => {
    for (const [, op] of operations()) {
      for (const status of Object.keys(op.responses).filter((s) => Number(s) >= 400)) {
        for (const schema of problemSchemas(op, status)) {
          expect(schema.properties.status.const).toBe(Number(status));
          expect(schema.additionalProperties).toBe(false);
          expect(schema.required).toEqual(expect.arrayContaining(['type', 'title', 'status', 'code', 'instance', 'request_id']));
        }
      }
    }
  });

  test('when a path exists but the method does not, then 405 method_not_allowed names the methods in Allow', async () => {
    const response = await fetch(`${baseUrl()}/healthz`, { method: 'DELETE' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({ status: 405, code: 'method_not_allowed' });
    expect((await fetch(`${baseUrl()}/no-such-path`, { method: 'DELETE' })).status).toBe(404);
  });
});
