/**
 * The token cache keeps a token that authenticated for up to a minute while its process hears every
 * revocation (api_tokens_generation, read every 200 ms; src/auth/token-revocation-watch.ts), and the revocation
 * promise still holds across processes: a token revoked anywhere, through the API or straight in
 * the database, is refused by every API process within one second, also while a process's watch
 * has lost its session.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { eventually } from '../helpers/eventually';
import { createTenant, SAMPLE_PUBKEY, startTestStack, type TestStack } from '../helpers/test-stack';

jest.setTimeout(60_000);

describe('token cache and revocation across API processes', () => {
  let stack: TestStack;
  let apis: ServedApi[];
  let sqlClient: pg.Client;
  beforeAll(async () => {
    stack = await startTestStack({ withWorker: false });
    apis = [await serveApi(stack.config), await serveApi(stack.config)];
    sqlClient = new pg.Client({ connectionString: stack.config.databaseUrl });
    await sqlClient.connect();
  });
  afterAll(async () => {
    await sqlClient?.end();
    for (const api of apis ?? []) await api.close();
    await stack?.close();
  });

  /** A fresh vm:read token of a fresh tenant, used once on every process (each caches it). */
  async function cachedEverywhere(): Promise<{ token: string; tokenId: string; get: (url: string) => Promise<number> }> {
    const { tenantId, token: root } = await createTenant(stack);
    const issued = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: root,
      body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 1800 },
    });
    expect(issued.status).toBe(201);
    const token = String(issued.body.token);
    const get = (url: string) => fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    expect(await Promise.all(apis.map((api) => get(api.url)))).toEqual([200, 200]);
    return { token, tokenId: String(issued.body.token_id), get };
  }

  /** Milliseconds until `status()` answers 401 (polled every 20 ms, at most 5 s). */
  /** From the revocation to the sending of the first request refused: how long the token still worked (not how long a busy machine took to answer). */
  async function msUntilRefused(status: () => Promise<number>): Promise<number> {
    const started = Date.now();
    let refusedSentAt = 0;
    await eventually(
      async () => {
        const sentAt = Date.now();
        if ((await status()) !== 401) return false;
        refusedSentAt = sentAt;
        return true;
      },
      5_000,
      'the revoked token refused',
      20,
    );
    return refusedSentAt - started;
  }

  const revokeBySql = (tokenId: string) => sqlClient.query('update api_tokens set revoked_at = now() where token_id = $1', [tokenId]);

  test('when a token cached for longer than the short lifetime is revoked straight in the database, then every API process refuses it within one second', async () => {
    const { tokenId, get } = await cachedEverywhere();
    // Past the 500 ms a cache entry lives without a watch: still served, from the cache.
    await sleep(1_200);
    expect(await Promise.all(apis.map((api) => get(api.url)))).toEqual([200, 200]);
    await revokeBySql(tokenId);
    const waits = await Promise.all(apis.map((api) => msUntilRefused(() => get(api.url))));
    for (const ms of waits) expect(ms).toBeLessThan(1_000);
  });

  test('when a token is revoked through one API process, then the other refuses it within one second', async () => {
    const { tenantId, token: root } = await createTenant(stack);
    const issued = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: root,
      body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 1800 },
    });
    const get = (url: string) => fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${String(issued.body.token)}` } }).then((r) => r.status);
    expect(await Promise.all(apis.map((api) => get(api.url)))).toEqual([200, 200]);
    await sleep(1_200);
    const revoked = await fetch(`${apis[0]!.url}/v1/tenants/${tenantId}/tokens/${String(issued.body.token_id)}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${root}` },
    });
    expect(revoked.status).toBe(200);
    expect(await get(apis[0]!.url)).toBe(401);
    expect(await msUntilRefused(() => get(apis[1]!.url))).toBeLessThan(1_000);
  });

  test("when a process's watch loses its session just as a token is revoked, then the process still refuses it within one second", async () => {
    const { tokenId, get } = await cachedEverywhere();
    await sleep(1_200);
    await sqlClient.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'vm-tenant-token-watch' and datname = current_database()`,
    );
    await revokeBySql(tokenId);
    const waits = await Promise.all(apis.map((api) => msUntilRefused(() => get(api.url))));
    for (const ms of waits) expect(ms).toBeLessThan(1_000);
  });
});
