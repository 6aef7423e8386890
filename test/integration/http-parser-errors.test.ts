import net from 'node:net';
import { generateToken } from '../../src/auth/token-format';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';

function rawRequest(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(request));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}

describe('requests the HTTP parser rejects before the app runs', () => {
  let api: ApiProcess;
  beforeAll(async () => {
    api = await startApiProcess({ LOG_LEVEL: 'warn', ADMIN_TOKEN: generateToken(), API_METRICS_PORT: '0' });
  }, 60_000);
  afterAll(async () => {
    await api?.stop();
  });

  test('when the request line is not HTTP, then the answer is a 400 problem document', async () => {
    const answer = await rawRequest(api.url, 'GET /v1/vms\u0000 HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('Content-Type: application/problem+json');
    expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ status: 400, code: 'invalid_request' });
  });

  test('when the headers exceed the limit, then the answer is a 431 problem document', async () => {
    const answer = await rawRequest(api.url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(JSON.parse(answer.split('\r\n\r\n')[1]!)).toMatchObject({ status: 431, code: 'invalid_request' });
  });
});
