/**
 * The reference page's examples and groups (issue 22): every operation is under one of the declared
 * tags, and has an example answer (and an example body when it takes one) that is valid against
 * the schema the document gives for it, and against the zod schema the route itself uses.
 */
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { buildOpenApiDocument } from '../../src/api/openapi/openapi-document';
import { ROUTE_DOCS } from '../../src/api/openapi/route-docs';
import { exampleOf, ROUTE_EXAMPLES, TAGS } from '../../src/api/openapi/route-examples';

type Media = { schema: Record<string, unknown>; example?: unknown };
type Operation = { tags?: string[]; requestBody?: { content: Record<string, Media> }; responses: Record<string, { content?: Record<string, Media> }> };

const document = buildOpenApiDocument('1') as { tags: { name: string; description: string }[]; paths: Record<string, Record<string, Operation>> };
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

const operationOf = (method: string, path: string): Operation => document.paths[path.replace(/:(\w+)/g, '{$1}')]![method.toLowerCase()]!;
const cases = ROUTE_DOCS.map((doc) => [`${doc.method} ${doc.path}`, doc] as const);

describe('OpenAPI document: tags and examples', () => {
  test('when the document is built, then it declares the five tags, each described, and every operation is under exactly one of them', () => {
    expect(document.tags.map((tag) => tag.name)).toEqual(['tenants', 'tokens', 'VMs', 'audit', 'service']);
    for (const tag of document.tags) expect(tag.description.length).toBeGreaterThan(20);
    const used = new Set<string>();
    for (const [, doc] of cases) {
      const tags = operationOf(doc.method, doc.path).tags ?? [];
      expect(tags).toHaveLength(1);
      expect(TAGS.map((tag) => tag.name)).toContain(tags[0]);
      used.add(tags[0]!);
    }
    expect([...used].sort()).toEqual(TAGS.map((tag) => tag.name).sort());
  });

  test('when the examples are listed, then there is one for each operation and none for an operation that does not exist', () => {
    expect(Object.keys(ROUTE_EXAMPLES).sort()).toEqual(cases.map(([key]) => key).sort());
  });

  test.each(cases)('when %s is documented, then its example body and answer are valid against the document and the route schemas', (_key, doc) => {
    const example = exampleOf(doc)!;
    const operation = operationOf(doc.method, doc.path);
    if (doc.body) {
      const media = operation.requestBody!.content['application/json']!;
      expect(media.example).toEqual(example.request);
      const validate = ajv.compile(media.schema);
      expect(validate(example.request) ? [] : validate.errors).toEqual([]);
      expect(doc.body.safeParse(example.request).error?.issues ?? []).toEqual([]);
    } else {
      expect(example.request).toBeUndefined();
    }
    const [media] = Object.values(operation.responses[doc.ok.status]!.content!);
    expect(media!.example).toEqual(example.response);
    const validate = ajv.compile(media!.schema);
    expect(validate(example.response) ? [] : validate.errors).toEqual([]);
    if (doc.ok.schema) expect(doc.ok.schema.safeParse(example.response).error?.issues ?? []).toEqual([]);
  });
});
