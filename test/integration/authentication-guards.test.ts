/**
 * Issue 9, item 5: what authentication refuses before it costs anything. Strings not in the token
 * format never reach Postgres; an address whose authentications keep failing is refused with 429;
 * API answers, and the one that carries a token secret first, are never cacheable.
 */
import { Kysely, PostgresDialect } from 'kysely';
import type { ApiOverrides } from '../../src/api/build-api';
import type { Config } from '../../src/config/config';
import { generateToken } from '../../src/auth/token-format';
import { createPgPool } from '../../src/db/database';
import type { Database } from '../../src/db/tables';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { createTenant, SAMPLE_PUBKEY, startTestStack, type TestStack } from '../helpers/test-stack';

describe('authentication guards', () => {
  let stack: TestStack;
  const apis: ServedApi[] = [];
  beforeAll(async () => {
    stack = await startTestStack({ withWorker: false });
  });
  afterAll(async () => {
    for (const api of apis) await api.close();
    await stack?.close();
  });

  /** Another API process (buildApi) on this run's database, listening on a random port. */
  async function startApp(config: Partial<Config>, overrides: ApiOverrides = {}): Promise<string> {
    const api = await serveApi({ ...stack.config, ...config }, overrides);
    apis.push(api);
    return api.url;
  }

  describe('strings that are not tokens', () => {
    const wrongChecksum = () => {
      const valid = generateToken();
      return `${valid.slice(0, -1)}${valid.at(-1) === 'A' ? 'B' : 'A'}`;
    };
    const notTokens: [string, () => string][] = [
      ['40 characters of garbage', () => 'x'.repeat(40)],
      ['a vmt_ token with a wrong checksum', wrongChecksum],
      ['a vmt_ prefix with too few characters', () => generateToken().slice(0, -2)],
      ['a token with one character too many', () => `${generateToken()}A`],
      ['a hex SHA-256', () => 'ab'.repeat(32)],
      ['a JWT-looking string', () => 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln'],
    ];

    test('when the Authorization header holds a string not in the token format, then 401 and no query reaches Postgres', async () => {
      const queries: string[] = [];
      const counted = new Kysely<Database>({
        dialect: new PostgresDialect({ pool: createPgPool(stack.config.databaseUrl, { max: 2 }) }),
        log: (event) => void queries.push(event.query.sql),
      });
      try {
        const url = await startApp({}, { db: counted });
        for (const [label, make] of notTokens) {
          const res = await fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${make()}` } });
          expect({ label, status: res.status }).toEqual({ label, status: 401 });
        }
        expect(queries).toEqual([]);
        // The counter works: a well-formed unknown token is looked up.
        const unknown = await fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${generateToken()}` } });
        expect(unknown.status).toBe(401);
        expect(queries.filter((query) => query.includes('api_tokens'))).toHaveLength(1);
      } finally {
        await counted.destroy();
      }
    });
  });

  describe('failed authentications per client address', () => {
    let url: string;
    beforeAll(async () => {
      // Loopback is a trusted proxy here, so each test can speak from its own client address.
      url = await startApp({ trustedProxies: ['loopback'], authFailuresPerMinute: 3 });
    });
    const from = (address: string, token: string) => fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': address } });

    test('when an address fails authentication more often than its budget, then it gets 429 with Retry-After, even with a valid token, and other addresses are unaffected', async () => {
      const { token } = await createTenant(stack);
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) statuses.push((await from('198.51.100.20', i === 1 ? 'garbage' : generateToken())).status);
      expect(statuses).toEqual([401, 401, 401]);
      const refused = await from('198.51.100.20', generateToken());
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(((await refused.json()) as { code: string }).code).toBe('too_many_failed_authentications');
      expect((await from('198.51.100.20', token)).status).toBe(429);
      expect((await from('198.51.100.21', token)).status).toBe(200);
    });

    test('when an address authenticates successfully, then it uses none of its failure budget', async () => {
      const { token } = await createTenant(stack);
      for (let i = 0; i < 10; i++) expect((await from('198.51.100.30', token)).status).toBe(200);
      expect((await from('198.51.100.30', generateToken())).status).toBe(401);
    });
  });

  describe('Cache-Control', () => {
    test('when a token is issued, then the answer carrying its secret says Cache-Control: no-store', async () => {
      const { tenantId, token } = await createTenant(stack);
      const issued = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
        token,
        body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 600 },
      });
      expect(issued.status).toBe(201);
      expect(issued.headers.get('cache-control')).toBe('no-store');
    });

    test('when any other API answer is given (reads, lists, refusals), then it says Cache-Control: no-store too', async () => {
      const { tenantId, token } = await createTenant(stack);
      const answers = await Promise.all([
        stack.request('GET', `/v1/tenants/${tenantId}/tokens`, { token }),
        stack.request('GET', `/v1/tenants/${tenantId}`, { token }),
        stack.request('GET', '/v1/vms', { token }),
        stack.request('GET', '/v1/audit', { token }),
        stack.request('GET', '/v1/vms', { token: generateToken() }),
        stack.request('GET', '/v1/tenants', { token }),
      ]);
      expect(answers.map((res) => [res.status, res.headers.get('cache-control')])).toEqual([
        [200, 'no-store'],
        [200, 'no-store'],
        [200, 'no-store'],
        [200, 'no-store'],
        [401, 'no-store'],
        [403, 'no-store'],
      ]);
    });
  });
});
