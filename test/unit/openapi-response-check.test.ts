import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkResponsesFrom } from '../helpers/openapi-response-check';

/** A tiny API whose answers are scripted per path, and its document. */
const DOCUMENT = {
  openapi: '3.1.0',
  info: { title: 'check', version: '1' },
  paths: {
    '/things/{id}': {
      get: {
        responses: {
          '200': {
            description: 'ok',
            content: {
              'application/json': { schema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'], additionalProperties: false } },
            },
          },
          '401': {
            description: 'no token',
            headers: { 'WWW-Authenticate': { required: true, schema: { type: 'string' } } },
            content: {
              'application/problem+json': {
                schema: { type: 'object', properties: { code: { const: 'unauthenticated' }, status: { const: 401 } }, required: ['code'] },
              },
            },
          },
        },
      },
    },
  },
};

const ANSWERS: Record<string, { status: number; type: string; body: string; headers?: Record<string, string> }> = {
  '/things/ok': { status: 200, type: 'application/json', body: '{"id":"ok"}' },
  '/things/extra': { status: 200, type: 'application/json', body: '{"id":"x","secret":"y"}' },
  '/things/teapot': { status: 418, type: 'application/json', body: '{}' },
  '/things/html': { status: 200, type: 'text/html', body: '<p>' },
  '/things/no-challenge': { status: 401, type: 'application/problem+json', body: '{"code":"unauthenticated","status":401}' },
  '/elsewhere': { status: 200, type: 'application/json', body: '{}' },
  '/missing': { status: 404, type: 'application/problem+json', body: '{"code":"unauthenticated","status":401}' },
};

describe('the OpenAPI response check of the test helpers', () => {
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/openapi.json') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(DOCUMENT));
        return;
      }
      const answer = ANSWERS[req.url ?? ''] ?? ANSWERS['/missing']!;
      res.writeHead(answer.status, { 'content-type': answer.type, ...answer.headers }).end(answer.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await checkResponsesFrom(url);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  test('when the answer is documented, then fetch returns it with its body unread', async () => {
    const response = await fetch(`${url}/things/ok`);
    expect(await response.json()).toEqual({ id: 'ok' });
  });

  test.each([
    ['/things/extra', /does not allow: \(body\) must NOT have additional properties/],
    ['/things/teapot', /answered 418, which the document does not list \(it lists 200, 401\)/],
    ['/things/html', /as text\/html; the document lists application\/json/],
    ['/things/no-challenge', /without the required WWW-Authenticate header/],
    ['/elsewhere', /outside any documented operation; only problems are expected there/],
  ])('when %s answers what the document does not describe, then the fetch fails saying what', async (path, message) => {
    await expect(fetch(`${url}${path}`)).rejects.toThrow(message);
  });

  test('when a request goes to another origin, then it is not checked', async () => {
    const other = createServer((_req, res) => res.writeHead(418).end('teapot'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    try {
      expect((await fetch(`http://127.0.0.1:${(other.address() as AddressInfo).port}/things/ok`)).status).toBe(418);
    } finally {
      other.close();
    }
  });
});
