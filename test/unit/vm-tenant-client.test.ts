import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVmTenantClient } from '../../src/client';

/** The typed client's own duties (bearer header, deadline, middleware hook), against a local HTTP server that records what arrives. */
describe('createVmTenantClient', () => {
  let server: Server;
  let baseUrl: string;
  const received: IncomingMessage[] = [];
  /** The path the server never answers, to exercise the deadline. */
  const HANG = '/v1/vms/hang';

  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push(req);
      if (req.url === HANG) return;
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: 'about:blank', title: 'Not Found', status: 404, code: 'not_found', detail: 'no such VM' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  beforeEach(() => (received.length = 0));

  test('when given a token, then each request carries it as a bearer header and a problem answer comes back as `error`', async () => {
    const client = createVmTenantClient({ baseUrl, token: 'vmt_example' });
    const { data, error, response } = await client.GET('/v1/vms/{vm_id}', { params: { path: { vm_id: 'vm-1' } } });
    expect(received[0]?.headers.authorization).toBe('Bearer vmt_example');
    expect(received[0]?.url).toBe('/v1/vms/vm-1');
    expect(response.status).toBe(404);
    expect(data).toBeUndefined();
    expect(error).toMatchObject({ code: 'not_found', detail: 'no such VM' });
  });

  test('when the API does not answer within the deadline, then the call fails with a TimeoutError instead of hanging', async () => {
    const client = createVmTenantClient({ baseUrl, token: 'vmt_example', timeoutMs: 200 });
    const started = Date.now();
    await expect(client.GET('/v1/vms/{vm_id}', { params: { path: { vm_id: 'hang' } } })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  test('when a middleware is added with use(), then it sees the request with its bearer header and what it adds reaches the API', async () => {
    const client = createVmTenantClient({ baseUrl, token: 'vmt_example' });
    let seenAuthorization: string | null = null;
    client.use({
      onRequest({ request }) {
        seenAuthorization = request.headers.get('authorization');
        request.headers.set('signature-input', 'sig1=("@method");created=1');
        return request;
      },
    });
    await client.DELETE('/v1/vms/{vm_id}', { params: { path: { vm_id: 'vm-2' } } });
    expect(seenAuthorization).toBe('Bearer vmt_example');
    expect(received[0]?.headers['signature-input']).toBe('sig1=("@method");created=1');
  });

  test('when given a fetch, then every request goes through it', async () => {
    const seen: string[] = [];
    const recordingFetch = (request: Request) => {
      seen.push(`${request.method} ${new URL(request.url).pathname}`);
      return fetch(request);
    };
    const client = createVmTenantClient({ baseUrl, fetch: recordingFetch });
    await client.GET('/healthz');
    expect(seen).toEqual(['GET /healthz']);
    expect(received[0]?.headers.authorization).toBeUndefined();
  });
});
