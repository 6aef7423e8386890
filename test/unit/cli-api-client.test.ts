import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApiClient } from '../../src/cli/vm-tenant/api-client';

/** The CLI's API client over the typed client: the middleware hook (where request signing plugs in), public calls, answers that are not JSON. */
describe('the vm-tenant CLI API client', () => {
  let server: Server;
  let url: string;
  const received: IncomingMessage[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      received.push(req);
      if (req.url === '/broken') {
        res.writeHead(502, { 'content-type': 'text/html' });
        res.end('<html>bad gateway</html>');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ vm_id: 'vm-1', status: 'running' }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => new Promise((resolve) => server.close(resolve)));
  beforeEach(() => (received.length = 0));

  test('when given a middleware, then it sees each request with its bearer header and what it adds reaches the API', async () => {
    const seen: string[] = [];
    const client = createApiClient({ url, token: 'vmt_cli' }, [
      {
        onRequest({ request }) {
          seen.push(`${request.method} ${new URL(request.url).pathname} ${request.headers.get('authorization')}`);
          request.headers.set('signature', 'sig1=:c2lnbmVk:');
        },
      },
    ]);
    expect(await client.call('GET', '/v1/vms/vm-1', { query: { tenant_id: 'acme' } })).toEqual({ vm_id: 'vm-1', status: 'running' });
    expect(seen).toEqual(['GET /v1/vms/vm-1 Bearer vmt_cli']);
    expect(received[0]?.url).toBe('/v1/vms/vm-1?tenant_id=acme');
    expect(received[0]?.headers.signature).toBe('sig1=:c2lnbmVk:');
  });

  test('when a call is not authenticated, then no token is sent', async () => {
    await createApiClient({ url, token: 'vmt_cli' }).call('GET', '/.well-known/vm-tenant/ledger-checkpoint-key', { authenticated: false });
    expect(received[0]?.headers.authorization).toBeUndefined();
  });

  test('when the answer is not JSON, then the error says so with code bad_response', async () => {
    await expect(createApiClient({ url, token: 'vmt_cli' }).call('GET', '/broken')).rejects.toMatchObject({ name: 'CliError', code: 'bad_response' });
  });
});
