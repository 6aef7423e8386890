import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

/**
 * The response-validation hook of the test suite: every answer a test receives from an API
 * registered here (checkResponsesFrom) is checked against the OpenAPI document that API serves —
 * the status is documented for the operation, the content type is one the status documents, the
 * body matches its schema, the required headers are present. A mismatch rejects the fetch, so the
 * test that made the request fails, naming the operation, the status and what did not match.
 *
 * It wraps the global fetch of the test file (Jest gives each file its own globals), so the stacks'
 * request helpers and the tests' own fetch calls to the API are all checked; other origins (the
 * fleet simulator, Temporal) pass through untouched.
 */

type JsonObject = Record<string, any>;

interface Operation {
  key: string;
  pattern: RegExp;
  /** Literal segments: a literal path wins over a template that also matches. */
  literal: number;
  responses: Record<string, JsonObject>;
}

interface CheckedDocument {
  operations: Map<string, Operation[]>;
  /** Every problem shape the document declares: what an answer outside any operation must be. */
  anyProblem: ValidateFunction;
  validators: Map<string, ValidateFunction>;
  ajv: Ajv2020;
}

/** Static files served beside the API, not operations of it (the reference page's assets). */
const NOT_OPERATIONS = /^\/docs\/assets\//;

const documents = new Map<string, Promise<CheckedDocument>>();
let unwrappedFetch: typeof fetch | null = null;

export class UndocumentedResponseError extends Error {
  override readonly name = 'UndocumentedResponseError';
}

function compileDocument(doc: JsonObject): CheckedDocument {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const operations = new Map<string, Operation[]>();
  const problems: JsonObject[] = [];
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, JsonObject>>)) {
    for (const [method, op] of Object.entries(methods)) {
      const segments = path.split('/');
      const operation: Operation = {
        key: `${method.toUpperCase()} ${path}`,
        pattern: new RegExp(`^${path.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`),
        literal: segments.filter((segment) => !segment.startsWith('{')).length,
        responses: op.responses,
      };
      operations.set(method.toUpperCase(), [...(operations.get(method.toUpperCase()) ?? []), operation]);
      for (const response of Object.values(op.responses as Record<string, JsonObject>)) {
        const problem = response.content?.['application/problem+json']?.schema;
        if (problem) problems.push(problem);
      }
    }
  }
  // Answers outside any operation (an unknown path) are problems too: every one is in components.schemas.
  problems.push(...Object.values(((doc.components as JsonObject | undefined)?.schemas ?? {}) as Record<string, JsonObject>));
  return { operations, anyProblem: ajv.compile({ anyOf: problems }), validators: new Map(), ajv };
}

function findOperation(document: CheckedDocument, method: string, path: string): Operation | undefined {
  const candidates = (document.operations.get(method === 'HEAD' ? 'GET' : method) ?? []).filter((op) => op.pattern.test(path));
  return candidates.sort((a, b) => b.literal - a.literal)[0];
}

function describeErrors(validate: ValidateFunction): string {
  return (validate.errors ?? [])
    .slice(0, 5)
    .map((error) => `${error.instancePath || '(body)'} ${error.message ?? ''}${error.params ? ` ${JSON.stringify(error.params)}` : ''}`)
    .join('; ');
}

/** The body as JSON, or a failure message (never the body itself: it may hold a token secret). */
function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: `the body is not JSON (${text.length} characters)` };
  }
}

function problemCodeOf(body: unknown): string {
  const code = (body as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? ` (code ${code})` : '';
}

/** What is wrong with the answer, or null when the document describes it. */
function mismatch(document: CheckedDocument, method: string, path: string, status: number, headers: Headers, text: string): string | null {
  const mediaType = (headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  const operation = findOperation(document, method, path);
  if (!operation) {
    if (NOT_OPERATIONS.test(path)) return null;
    if (mediaType !== 'application/problem+json')
      return `answered ${status} with ${mediaType || 'no content type'} outside any documented operation; only problems are expected there`;
    if (method === 'HEAD') return null;
    const parsed = parseJson(text);
    if ('error' in parsed) return parsed.error;
    if (!document.anyProblem(parsed.value))
      return `answered ${status}${problemCodeOf(parsed.value)} outside any documented operation, with a body no documented problem matches: ${describeErrors(document.anyProblem)}`;
    if (status === 405 && !headers.has('allow')) return 'answered 405 without an Allow header';
    return null;
  }
  const where = `${operation.key} (as ${method} ${path})`;
  const response = operation.responses[String(status)];
  if (!response) return `${where} answered ${status}, which the document does not list (it lists ${Object.keys(operation.responses).join(', ')})`;
  for (const [name, header] of Object.entries((response.headers ?? {}) as Record<string, JsonObject>)) {
    if (header.required && !headers.has(name)) return `${where} answered ${status} without the required ${name} header`;
  }
  const content = (response.content ?? {}) as Record<string, JsonObject>;
  if (Object.keys(content).length === 0) return text === '' ? null : `${where} answered ${status} with a body, which the document does not describe`;
  const media = content[mediaType];
  if (!media) return `${where} answered ${status} as ${mediaType || 'no content type'}; the document lists ${Object.keys(content).join(', ')}`;
  if (method === 'HEAD' || !/json$/.test(mediaType)) return null;
  const parsed = parseJson(text);
  if ('error' in parsed) return `${where} answered ${status}: ${parsed.error}`;
  const cacheKey = `${operation.key} ${status} ${mediaType}`;
  let validate = document.validators.get(cacheKey);
  if (!validate) {
    validate = document.ajv.compile(media.schema ?? {});
    document.validators.set(cacheKey, validate);
  }
  if (!validate(parsed.value))
    return `${where} answered ${status}${problemCodeOf(parsed.value)} with a body the document does not allow: ${describeErrors(validate)}`;
  return null;
}

function requestOf(input: Parameters<typeof fetch>[0], init?: RequestInit): { url: URL; method: string } {
  if (input instanceof Request) return { url: new URL(input.url), method: (init?.method ?? input.method).toUpperCase() };
  return { url: new URL(String(input)), method: (init?.method ?? 'GET').toUpperCase() };
}

function installFetchWrapper(): void {
  if (unwrappedFetch) return;
  const original = globalThis.fetch;
  unwrappedFetch = original;
  globalThis.fetch = async function checkedFetch(input, init) {
    const response = await original(input, init);
    const { url, method } = requestOf(input, init);
    const document = documents.get(url.origin);
    if (!document) return response;
    const text = await response.clone().text();
    const problem = mismatch(await document, method, url.pathname, response.status, response.headers, text);
    if (problem) throw new UndocumentedResponseError(`The API's answer does not match its OpenAPI document: ${problem}`);
    return response;
  };
}

/**
 * Checks every answer from the API at `apiUrl` against the document it serves at /openapi.json,
 * from now on, in this test file. Await it once the API listens.
 */
export async function checkResponsesFrom(apiUrl: string): Promise<void> {
  installFetchWrapper();
  const origin = new URL(apiUrl).origin;
  if (documents.has(origin)) return;
  const loaded = unwrappedFetch!(`${origin}/openapi.json`, { signal: AbortSignal.timeout(10_000) }).then(async (response) => {
    if (!response.ok) throw new Error(`${origin}/openapi.json answered ${response.status}`);
    return compileDocument((await response.json()) as JsonObject);
  });
  documents.set(origin, loaded);
  await loaded;
}
