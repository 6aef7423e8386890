/**
 * Issue 9, item 5: revocation and issue cannot race, tenant callers revoke only their own subtree,
 * and revocation reaches every API process within one second (each caches a token that authenticated
 * for 500 ms; the revoking process clears its own cache at once).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import { insertToken } from '../../src/auth/token.repository';
import { generateToken, hashToken, newTokenId } from '../../src/auth/token-format';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { createTenant, SAMPLE_PUBKEY, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';

describe('token revocation', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ withWorker: false });
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** Each generation lives shorter than its issuer (createTenant's root: 3600 s). */
  async function issue(issuer: string, tenantId: string, scope: string, expiresInSeconds = 1800): Promise<ApiResponse> {
    return stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: issuer,
      body: { subject_pubkey: SAMPLE_PUBKEY, scope, expires_in_seconds: expiresInSeconds },
    });
  }
  const revoke = (caller: string, tenantId: string, tokenId: string) => stack.request('DELETE', `/v1/tenants/${tenantId}/tokens/${tokenId}`, { token: caller });
  const listVms = (token: string) => stack.request('GET', '/v1/vms', { token });

  /** Polls until `status()` answers 401; resolves with the milliseconds that took. */
  async function msUntilRefused(status: () => Promise<number>, giveUpMs = 5_000): Promise<number> {
    const started = Date.now();
    while ((await status()) !== 401) {
      if (Date.now() - started > giveUpMs) throw new Error(`still accepted after ${giveUpMs} ms`);
      await sleep(20);
    }
    return Date.now() - started;
  }

  /** Unrevoked tokens of the tenant with a revoked token anywhere above them. */
  async function usableUnderRevoked(tenantId: string): Promise<string[]> {
    const { rows } = await sql<{ token_id: string }>`
      with recursive lineage as (
        select token_id as descendant, parent_token_id as ancestor from api_tokens where tenant_id = ${tenantId} and parent_token_id is not null
        union
        select lineage.descendant, up.parent_token_id from lineage join api_tokens up on up.token_id = lineage.ancestor where up.parent_token_id is not null
      )
      select distinct child.token_id from lineage
      join api_tokens child on child.token_id = lineage.descendant
      join api_tokens above on above.token_id = lineage.ancestor
      where child.revoked_at is null and above.revoked_at is not null`.execute(stack.db);
    return rows.map((row) => row.token_id);
  }

  test('when a sub-token issues children in concurrent loops while its parent revokes it, then afterwards no child is usable and none has a revoked ancestor', async () => {
    const { tenantId, token: root } = await createTenant(stack, { api_rate_limit_rpm: 100_000 });
    const issued: { token: string; token_id: string }[] = [];
    let revokedRounds = 0;
    for (let round = 0; round < 5; round++) {
      const sub = await issue(root, tenantId, 'service:tenant-admin');
      expect(sub.status).toBe(201);
      let stop = false;
      const loop = async () => {
        while (!stop) {
          const child = await issue(sub.body.token, tenantId, 'vm:read', 600);
          if (child.status === 201) issued.push(child.body);
          else if (child.status === 401) stop = true;
          else throw new Error(`unexpected ${child.status} ${JSON.stringify(child.body)}`);
        }
      };
      const loops = Array.from({ length: 6 }, loop);
      // Let the loops get going, so the revocation lands while several issues are in flight.
      await sleep(150 + round * 40);
      const revoked = await revoke(root, tenantId, sub.body.token_id);
      expect(revoked.status).toBe(200);
      revokedRounds += 1;
      await Promise.all(loops);
    }
    expect(revokedRounds).toBe(5);
    expect(issued.length).toBeGreaterThan(20);

    expect(await usableUnderRevoked(tenantId)).toEqual([]);
    const statuses = await Promise.all(issued.map(async (child) => (await listVms(child.token)).status));
    expect(statuses.filter((status) => status !== 401)).toEqual([]);
    // The root the platform admin issued was never under a revoked token.
    expect((await listVms(root)).status).toBe(200);
  }, 120_000);

  test('when a token row has a revoked ancestor but was itself never revoked (written before the lock existed), then it is refused', async () => {
    const { tenantId, token: root, tokenId: rootId } = await createTenant(stack);
    const sub = await issue(root, tenantId, 'service:tenant-admin');
    const orphanToken = generateToken();
    await insertToken(stack.db, {
      token_id: newTokenId(),
      tenant_id: tenantId,
      scope: 'vm:read',
      token_hash: hashToken(orphanToken),
      parent_token_id: sub.body.token_id,
      created_at: new Date(),
      expires_at: new Date(Date.now() + 600_000),
    });
    expect((await listVms(orphanToken)).status).toBe(200);
    // Revoke only the grandparent, bypassing the cascade, as a pre-fix race would have left it.
    await stack.db.updateTable('api_tokens').set({ revoked_at: new Date() }).where('token_id', '=', rootId).execute();
    // Written behind the API's back, so only the token cache's lifetime bounds it.
    expect(await msUntilRefused(async () => (await listVms(orphanToken)).status)).toBeLessThan(1000);
    expect((await listVms(sub.body.token)).status).toBe(401);
  });

  describe('who may revoke what', () => {
    test('when a tenant sub-token revokes its issuer, the admin-issued root, a sibling or another root, then 403 token_outside_subtree and nothing is revoked', async () => {
      const { tenantId, token: root, tokenId: rootId } = await createTenant(stack);
      const otherRoot = await issue(stack.adminToken, tenantId, 'service:tenant-admin');
      const sub = await issue(root, tenantId, 'service:tenant-admin');
      const sibling = await issue(root, tenantId, 'vm:read');
      for (const target of [rootId, otherRoot.body.token_id, sibling.body.token_id]) {
        const res = await revoke(sub.body.token, tenantId, target);
        expect({ status: res.status, code: res.body.code }).toEqual({ status: 403, code: 'token_outside_subtree' });
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      }
      const rows = await stack.db.selectFrom('api_tokens').select(['token_id', 'revoked_at']).where('tenant_id', '=', tenantId).execute();
      expect(rows.filter((row) => row.revoked_at !== null)).toEqual([]);
      for (const token of [root, otherRoot.body.token, sibling.body.token, sub.body.token]) expect((await listVms(token)).status).toBe(200);
    });

    test('when a tenant sub-token revokes a token issued under it, or itself, then 200 and exactly that subtree is revoked', async () => {
      const { tenantId, token: root } = await createTenant(stack);
      const sub = await issue(root, tenantId, 'service:tenant-admin');
      const child = await issue(sub.body.token, tenantId, 'service:tenant-admin', 1200);
      const grandchild = await issue(child.body.token, tenantId, 'vm:read', 600);
      const res = await revoke(sub.body.token, tenantId, child.body.token_id);
      expect(res.status).toBe(200);
      expect([...res.body.revoked_token_ids].sort()).toEqual([child.body.token_id, grandchild.body.token_id].sort());
      const self = await revoke(sub.body.token, tenantId, sub.body.token_id);
      expect(self.body.revoked_token_ids).toEqual([sub.body.token_id]);
      expect((await listVms(root)).status).toBe(200);
    });

    test('when the platform admin revokes any token of a tenant, then 200', async () => {
      const { tenantId, token: root, tokenId: rootId } = await createTenant(stack);
      const sub = await issue(root, tenantId, 'vm:read');
      const res = await revoke(stack.adminToken, tenantId, rootId);
      expect(res.status).toBe(200);
      expect([...res.body.revoked_token_ids].sort()).toEqual([rootId, sub.body.token_id].sort());
    });
  });

  test('when a token is revoked through one API process, then a second API process on the same database refuses it within one second', async () => {
    const apis: ServedApi[] = [await serveApi(stack.config), await serveApi(stack.config)];
    const urls = apis.map((api) => api.url);
    try {
      const { tenantId, token: root } = await createTenant(stack);
      const reader = await issue(root, tenantId, 'vm:read');
      const get = (url: string) => fetch(`${url}/v1/vms`, { headers: { authorization: `Bearer ${reader.body.token}` } }).then((r) => r.status);
      expect(await Promise.all(urls.map(get))).toEqual([200, 200]);
      const revoked = await fetch(`${urls[0]}/v1/tenants/${tenantId}/tokens/${reader.body.token_id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${root}` },
      });
      expect(revoked.status).toBe(200);
      // The revoking process refuses at once; the other, whose cache just held the token, within 1 s.
      expect(await get(urls[0]!)).toBe(401);
      expect(await msUntilRefused(() => get(urls[1]!))).toBeLessThan(1000);
    } finally {
      for (const api of apis) await api.close();
    }
  });
});
