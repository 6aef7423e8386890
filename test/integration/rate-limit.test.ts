import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { startApiProcess, type ApiProcess } from '../helpers/api-process';
import { generateToken } from '../../src/auth/token-format';
import { leaseSize } from '../../src/ratelimit/tenant-rate-limiter';
import { createTenant, startTestStack, type TestStack } from '../helpers/test-stack';

describe('per-tenant API rate limit shared by every API process', () => {
  let stack: TestStack;
  let apis: ApiProcess[] = [];
  beforeAll(async () => {
    stack = await startTestStack();
    // The API processes serve only tenant requests; their own bootstrap admin token is never used.
    const env = { ADMIN_TOKEN: generateToken(), TEMPORAL_TASK_QUEUE: stack.config.temporalTaskQueue, LOG_LEVEL: 'warn' };
    apis = await Promise.all([startApiProcess(env), startApiProcess(env)]);
  }, 90_000);
  afterAll(async () => {
    await Promise.all(apis.map((api) => api.stop()));
    await stack?.close();
  });

  const get = (url: string, token: string) => fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${token}` } });

  /** Budgets run in fixed minute windows: start a test far enough from the next boundary. */
  async function awayFromWindowEnd(needMs = 15_000): Promise<void> {
    const left = 60_000 - (Date.now() % 60_000);
    if (left < needMs) await sleep(left + 50);
  }
  beforeEach(() => awayFromWindowEnd(), 20_000);

  test('when two API processes serve one tenant, then they share its budget and refuse the excess with rate_limited', async () => {
    const { token, tenantId } = await createTenant(stack, { api_rate_limit_rpm: 10 });
    // createTenant's token issue was made by the admin, so nothing of the tenant's budget is used yet.
    // One request to each process first, alone: each caches the token (and its tenant's limit) for
    // the long lifetime its revocation watch allows, so the change below must reach it some other way.
    for (const api of apis) expect((await get(api.url, token)).status).toBe(200);
    const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => get(apis[i % 2]!.url, token)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(8);
    expect(statuses.filter((s) => s === 429)).toHaveLength(4);

    const refused = responses.find((r) => r.status === 429)!;
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('ratelimit-policy')).toBe('"tenant";q=10;w=60');
    expect(refused.headers.get('ratelimit')).toMatch(/^"tenant";r=0;t=\d+$/);
    expect(await refused.json()).toMatchObject({ code: 'rate_limited', limit: 10 });

    const accepted = responses.find((r) => r.status === 200)!;
    expect(accepted.headers.get('ratelimit')).toMatch(/^"tenant";r=\d+;t=\d+$/);

    // A quota change applies without a restart in processes other than the one that made it: it
    // moves the token watch's counter on (migration 0013), which each reads every 200 ms.
    const patched = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { api_rate_limit_rpm: 20 } });
    expect(patched.status).toBe(200);
    await sleep(600);
    const more = await Promise.all(Array.from({ length: 4 }, (_, i) => get(apis[i % 2]!.url, token)));
    expect(more.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  });

  test('when two API processes serve a busy tenant with a large limit, then together they admit at most the limit and refuse at most one lease early', async () => {
    const limit = 600;
    const lease = leaseSize(limit);
    expect(lease).toBeGreaterThan(1);
    const { token, tenantId } = await createTenant(stack, { api_rate_limit_rpm: limit });
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 16 }, async (_, lane) => {
        for (let i = lane; i < limit + 100; i += 16) statuses.push((await get(apis[i % 2]!.url, token)).status);
      }),
    );
    const admitted = statuses.filter((s) => s === 200).length;
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(admitted).toBeLessThanOrEqual(limit);
    expect(admitted).toBeGreaterThanOrEqual(limit - lease);
    // The window's row granted exactly the limit, never more.
    const { rows } = await sql<{ points: number }>`select points from api_rate_limits where key like ${`tenant-window:${tenantId}:%`}`.execute(stack.db);
    expect(rows.map((r) => r.points)).toEqual([limit]);
  }, 60_000);

  test('when one tenant is rate limited, then another tenant is not affected', async () => {
    const a = await createTenant(stack, { api_rate_limit_rpm: 2 });
    const b = await createTenant(stack, { api_rate_limit_rpm: 100 });
    for (let i = 0; i < 3; i++) await get(apis[0]!.url, a.token);
    expect((await get(apis[0]!.url, a.token)).status).toBe(429);
    expect((await get(apis[1]!.url, b.token)).status).toBe(200);
  });
});
