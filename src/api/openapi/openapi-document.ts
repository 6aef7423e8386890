import { z } from 'zod';
import type { ProblemCode } from '../problem';
import { PROBLEM_CATALOGUE, problemSchema, type ProblemHeader } from './problem-catalogue';
import { operationLinks, operationId } from './operation-links';
import { pathParameterSchema } from './path-parameters';
import { ROUTE_DOCS, type RouteDoc } from './route-docs';
import { exampleOf, tagOf, TAGS } from './route-examples';

type JsonObject = Record<string, unknown>;

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): JsonObject => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonObject;
  return rest;
};

/** Problems a route of each kind can answer whatever it does: the middleware in front of it. */
const EVERY_ROUTE: ProblemCode[] = ['internal_error'];
const EVERY_AUTHENTICATED_ROUTE: ProblemCode[] = [
  ...EVERY_ROUTE,
  // express.json and the request-reading plumbing (bodies are parsed for every method that sends one)
  'invalid_request',
  'malformed_json',
  'payload_too_large',
  'unsupported_media_type',
  // authenticate, the failed-authentication limiter and the tenant rate limit
  'unauthenticated',
  'invalid_token',
  'signature_required',
  'signature_malformed',
  'signature_key_mismatch',
  'signature_invalid',
  'signature_expired',
  'signature_replayed',
  'content_digest_mismatch',
  'insufficient_scope',
  'too_many_failed_authentications',
  'rate_limited',
  // Postgres or Temporal down or hung
  'dependency_unavailable',
];

/** Every problem code a route can answer: its own and those of the middleware in front of it. */
export function problemsOf(doc: RouteDoc): ProblemCode[] {
  return [...new Set([...(doc.auth === 'public' ? EVERY_ROUTE : EVERY_AUTHENTICATED_ROUTE), ...(doc.problems ?? [])])];
}

const HEADERS: Record<
  ProblemHeader | 'X-Request-Id' | 'Location' | 'Idempotent-Replayed' | 'RateLimit' | 'RateLimit-Policy',
  { description: string; schema: JsonObject }
> = {
  'X-Request-Id': { description: 'The id the server gave the request (logs, workflow, ledger)', schema: { type: 'string' } },
  'WWW-Authenticate': { description: 'Bearer challenge (RFC 6750)', schema: { type: 'string' } },
  'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 0 } },
  Allow: { description: 'The methods the path supports', schema: { type: 'string' } },
  'Accept-Signature': { description: "What a key-bound token's request must sign (RFC 9421)", schema: { type: 'string' } },
  Location: { description: 'The URL of the new resource', schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: '"true" when this is the stored answer to an earlier request with the same Idempotency-Key',
    schema: { type: 'string', enum: ['true'] },
  },
  RateLimit: {
    description: "Requests left in the tenant's window (draft-ietf-httpapi-ratelimit-headers); only on tenant-token requests",
    schema: { type: 'string' },
  },
  'RateLimit-Policy': { description: "The tenant's rate-limit policy; only on tenant-token requests", schema: { type: 'string' } },
};

function headers(required: readonly (keyof typeof HEADERS)[], optional: readonly (keyof typeof HEADERS)[] = []): JsonObject {
  const entries = [...new Set(['X-Request-Id' as const, ...required])].map((name) => [name, { ...HEADERS[name], required: true }] as const);
  const optionalEntries = optional.filter((name) => !required.includes(name)).map((name) => [name, { ...HEADERS[name], required: false }] as const);
  return Object.fromEntries([...entries, ...optionalEntries]);
}

/** One response per status: its codes' exact shapes (anyOf when there are several), their headers. */
function problemResponses(doc: RouteDoc): JsonObject {
  const byStatus = new Map<number, ProblemCode[]>();
  for (const code of problemsOf(doc)) {
    const { status } = PROBLEM_CATALOGUE[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const rateLimited = doc.auth === 'public' ? [] : (['RateLimit', 'RateLimit-Policy'] as const);
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => {
      const schemas = codes.map((code) => jsonSchema(problemSchema(code), 'output'));
      const headerSets = codes.map((code) => PROBLEM_CATALOGUE[code].headers ?? []);
      const always = headerSets[0]!.filter((name) => headerSets.every((set) => set.includes(name)));
      const sometimes = headerSets.flat();
      return [
        status,
        {
          description: codes.map((code) => `\`${code}\`: ${PROBLEM_CATALOGUE[code].description}`).join('; '),
          headers: headers(always, [...sometimes, ...rateLimited]),
          content: { 'application/problem+json': { schema: schemas.length === 1 ? schemas[0] : { anyOf: schemas } } },
        },
      ];
    }),
  );
}

function successResponse(doc: RouteDoc): JsonObject {
  const example = exampleOf(doc);
  const withExample = example ? { example: example.response } : {};
  const content = doc.ok.schema
    ? { 'application/json': { schema: jsonSchema(doc.ok.schema, 'output'), ...withExample } }
    : { [doc.ok.contentType ?? 'application/json']: { schema: { type: 'string' }, ...withExample } };
  const required = doc.method === 'POST' && doc.path === '/v1/tenants' ? (['Location'] as const) : [];
  const optional = [
    ...(doc.idempotent ? (['Idempotent-Replayed'] as const) : []),
    ...(doc.auth === 'public' ? [] : (['RateLimit', 'RateLimit-Policy'] as const)),
  ];
  const links = operationLinks(doc);
  return { description: doc.ok.description, headers: headers(required, optional), content, ...(links ? { links } : {}) };
}

function operation(doc: RouteDoc): JsonObject {
  const parameters: JsonObject[] = [...doc.path.matchAll(/:(\w+)/g)].map((match) => ({
    name: match[1],
    in: 'path',
    required: true,
    schema: pathParameterSchema(match[1]!),
  }));
  if (doc.query) {
    const query = jsonSchema(doc.query, 'input') as { properties?: Record<string, JsonObject>; required?: string[] };
    for (const [name, schema] of Object.entries(query.properties ?? {})) {
      parameters.push({ name, in: 'query', required: query.required?.includes(name) ?? false, schema });
    }
  }
  if (doc.idempotent) {
    parameters.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
      description: 'Same key and body: the same answer, one effect. Kept 24 h per tenant.',
    });
  }
  const responses: JsonObject = { [doc.ok.status]: successResponse(doc), ...problemResponses(doc) };
  if (doc.other)
    responses[doc.other.status] = {
      description: doc.other.description,
      headers: headers([]),
      content: { 'application/json': { schema: jsonSchema(doc.other.schema, 'output') } },
    };
  const requestExample = exampleOf(doc)?.request;
  return {
    tags: [tagOf(doc)],
    summary: doc.summary,
    operationId: operationId(doc),
    ...(doc.auth === 'public' ? { security: [] } : { security: [{ bearer: [] }], 'x-required-scope': doc.auth }),
    ...(parameters.length ? { parameters } : {}),
    ...(doc.body
      ? {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: jsonSchema(doc.body, 'input'), ...(requestExample === undefined ? {} : { example: requestExample }) } },
          },
        }
      : {}),
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
    info: {
      title: 'vm-tenant',
      version,
      description:
        'Tenant proxy of a VM resource pool: tenants, capability tokens, VMs under quota, and the audit ledger. ' +
        'Every error is an RFC 9457 problem (application/problem+json) with a stable `code`; each operation lists the codes it can answer under their status. ' +
        'A method a path does not support is answered 405 method_not_allowed with an Allow header; a path that does not exist, 404 not_found. components.schemas holds every problem by code.',
    },
    servers: [{ url: 'http://127.0.0.1:9221' }],
    tags: TAGS.map(({ name, description }) => ({ name, description })),
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'vmt_… token issued by POST /v1/tenants/{tenant_id}/tokens' } },
      // Every problem by code, including those answered outside any operation (an unknown path: not_found).
      schemas: Object.fromEntries(
        (Object.keys(PROBLEM_CATALOGUE) as ProblemCode[]).map((code) => [`problem_${code}`, jsonSchema(problemSchema(code), 'output')]),
      ),
    },
    paths,
  };
}
