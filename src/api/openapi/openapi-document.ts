import { z } from 'zod';
import { problemSchema } from './response-schemas';
import { ROUTE_DOCS, type RouteDoc } from './route-docs';

type JsonObject = Record<string, unknown>;

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): JsonObject => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  return rest;
};

const problemContent = (schema: z.ZodType = problemSchema) => ({ 'application/problem+json': { schema: jsonSchema(schema, 'output') } });

function operation(doc: RouteDoc): JsonObject {
  const parameters: JsonObject[] = [...doc.path.matchAll(/:(\w+)/g)].map((match) => ({ name: match[1], in: 'path', required: true, schema: { type: 'string' } }));
  if (doc.query) {
    const query = jsonSchema(doc.query, 'input') as { properties?: Record<string, JsonObject>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      parameters.push({ name, in: 'query', required: query.required?.includes(name) ?? false, schema });
    }
  }
  if (doc.idempotent) {
    parameters.push({ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 }, description: 'Same key and body: the same answer, one effect. Kept 24 h per tenant.' });
  }
  const responses: JsonObject = {
    [doc.ok.status]: { description: doc.ok.description, ...(doc.ok.schema ? { content: { 'application/json': { schema: jsonSchema(doc.ok.schema, 'output') } } } : {}) },
  };
  if (doc.auth !== 'public') {
    responses['400'] = { description: 'Invalid input; `errors` names each bad field', content: problemContent() };
    responses['401'] = {
      description:
        'unauthenticated or invalid_token: missing, unknown, expired or revoked token. A key-bound token\'s request that is not properly signed (RFC 9421, see Accept-Signature): signature_required, signature_malformed, signature_key_mismatch, signature_invalid, signature_expired, signature_replayed, content_digest_mismatch',
      content: problemContent(),
    };
    responses['403'] = { description: 'The token lacks the scope', content: problemContent() };
    responses['404'] = { description: 'No such object, or it belongs to another tenant (answered alike)', content: problemContent() };
    responses['429'] = { description: 'rate_limited: the tenant\'s API rate limit is used up; or too_many_failed_authentications: too many requests from this address failed authentication (see Retry-After)', content: problemContent() };
  }
  for (const error of doc.errors ?? []) responses[error.status] = { description: error.description, content: problemContent(error.schema) };
  return {
    summary: doc.summary,
    operationId: `${doc.method.toLowerCase()}${doc.path.replace(/[/:.]+(\w)/g, (_m, c: string) => c.toUpperCase())}`,
    ...(doc.auth === 'public' ? { security: [] } : { security: [{ bearer: [] }], 'x-required-scope': doc.auth }),
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(doc.body, 'input') } } } } : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of the API, built from the same zod schemas the routes validate with. */
export function buildOpenApiDocument(version: string): JsonObject {
  const paths: Record<string, JsonObject> = {};
  for (const doc of ROUTE_DOCS) {
    const path = doc.path.replace(/:(\w+)/g, '{$1}');
    paths[path] = { ...(paths[path] ?? {}), [doc.method.toLowerCase()]: operation(doc) };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'vm-tenant', version, description: 'Tenant proxy of a VM resource pool: tenants, capability tokens, VMs under quota, and the audit ledger.' },
    servers: [{ url: 'http://127.0.0.1:9221' }],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'vmt_… token issued by POST /v1/tenants/{tenant_id}/tokens' } } },
    paths,
  };
}
