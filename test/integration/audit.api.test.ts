import { createTenant, SAMPLE_PUBKEY, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';

function expectProblem(res: ApiResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
}

interface Entry {
  seq?: string;
  event_id: string;
  tenant_id: string | null;
  event_type: string;
  actor: { token_id: string | null; scope: string | null };
  source: { ip?: string | null; user_agent?: string | null; request_id: string | null };
  details: Record<string, unknown>;
  hash?: string;
  prev_hash?: string;
  tenant_seq: string;
  tenant_prev_hash: string;
  tenant_hash: string;
}

describe('audit API', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  /** A tenant with some ledger history: TENANT_CREATED, TOKEN_ISSUED, QUOTA_CHANGED. */
  async function tenantWithActivity() {
    const created = await createTenant(stack);
    const patched = await stack.request('PATCH', `/v1/tenants/${created.tenantId}`, { token: stack.adminToken, body: { max_vms: 11 } });
    expect(patched.status).toBe(200);
    const issue = async (scope: string) => {
      const res = await stack.request('POST', `/v1/tenants/${created.tenantId}/tokens`, {
        token: created.token,
        body: { subject_pubkey: SAMPLE_PUBKEY, scope, expires_in_seconds: 600 },
      });
      expect(res.status).toBe(201);
      return res.body.token as string;
    };
    return { ...created, issue };
  }

  async function readAll(token: string, query: string): Promise<Entry[]> {
    const entries: Entry[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 100; page++) {
      const res: ApiResponse = await stack.request('GET', `/v1/audit?${query}${cursor ? `&cursor=${cursor}` : ''}`, { token });
      expect(res.status).toBe(200);
      entries.push(...res.body.items);
      cursor = res.body.next_cursor;
      if (!cursor) return entries;
    }
    throw new Error('too many pages');
  }

  test("when a tenant token reads the ledger, then it sees only its own tenant's entries", async () => {
    const a = await tenantWithActivity();
    const b = await tenantWithActivity();
    await b.issue('vm:read');

    for (const t of [a, b]) {
      const res = await stack.request('GET', '/v1/audit', { token: t.token });
      expect(res.status).toBe(200);
      const entries: Entry[] = res.body.items;
      expect(entries.length).toBeGreaterThanOrEqual(3);
      expect(new Set(entries.map((e) => e.tenant_id))).toEqual(new Set([t.tenantId]));
      expect(entries.map((e) => e.event_type)).toEqual(expect.arrayContaining(['TENANT_CREATED', 'TOKEN_ISSUED', 'QUOTA_CHANGED']));
    }
  });

  test('when an audit:read token reads the ledger, then entries carry actor and their tenant chain but no global seq, prev_hash or hash, and no operator source', async () => {
    const t = await tenantWithActivity();
    const auditor = await t.issue('audit:read');
    const res = await stack.request('GET', '/v1/audit', { token: auditor, headers: { 'user-agent': 'audit-test/1.0' } });
    expect(res.status).toBe(200);
    const entries: Entry[] = res.body.items;
    expect(entries.every((e) => e.tenant_id === t.tenantId)).toBe(true);
    for (const entry of entries) {
      expect(Object.keys(entry)).not.toContain('seq');
      expect(Object.keys(entry)).not.toContain('prev_hash');
      expect(Object.keys(entry)).not.toContain('hash');
      expect(entry.tenant_hash).toMatch(/^[0-9a-f]{64}$/);
    }
    // The tenant's own chain, from tenant_seq 1, each entry linked to the one before.
    const chain = [...entries].sort((a, b) => Number(a.tenant_seq) - Number(b.tenant_seq));
    expect(chain.map((e) => e.tenant_seq)).toEqual(chain.map((_, i) => String(i + 1)));
    chain.forEach((e, i) => expect(e.tenant_prev_hash).toBe(i === 0 ? '0'.repeat(64) : chain[i - 1]!.tenant_hash));
    // TENANT_CREATED and QUOTA_CHANGED were the platform admin's actions: only their request id shows.
    const created = entries.find((e) => e.event_type === 'TENANT_CREATED')!;
    expect(created).toMatchObject({ event_id: expect.any(String), actor: { token_id: expect.any(String), scope: 'service:admin' } });
    expect(created.source).toEqual({ request_id: expect.any(String) });
    expect(entries.find((e) => e.event_type === 'QUOTA_CHANGED')!.source).toEqual({ request_id: expect.any(String) });
    // The tenant's own actions keep their source: it is the tenant's own address and client.
    const issued = entries.find((e) => e.event_type === 'TOKEN_ISSUED' && e.actor.scope === 'service:tenant-admin')!;
    expect(issued.source).toEqual({ ip: expect.any(String), user_agent: expect.any(String), request_id: expect.any(String) });
  });

  test("when the platform admin reads the same entries, then it sees seq, prev_hash, hash and the operator's source", async () => {
    const t = await tenantWithActivity();
    const res = await stack.request('GET', `/v1/audit?tenant_id=${t.tenantId}&event_type=TENANT_CREATED`, { token: stack.adminToken });
    expect(res.body.items[0]).toMatchObject({
      seq: expect.stringMatching(/^\d+$/),
      prev_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      source: { ip: expect.any(String), user_agent: expect.any(String), request_id: expect.any(String) },
    });
  });

  test("when a tenant pages, then next_cursor is an event id, and a seq or another tenant's event id is refused as a cursor", async () => {
    const a = await tenantWithActivity();
    const b = await tenantWithActivity();
    const first = await stack.request('GET', '/v1/audit?limit=1', { token: a.token });
    expect(first.body.next_cursor).toBe(first.body.items[0].event_id);
    const bEntry = (await stack.request('GET', '/v1/audit?limit=1', { token: b.token })).body.items[0] as Entry;
    expectProblem(await stack.request('GET', `/v1/audit?cursor=${bEntry.event_id}`, { token: a.token }), 400, 'invalid_request');
    expectProblem(await stack.request('GET', '/v1/audit?cursor=1', { token: a.token }), 400, 'invalid_request');
  });

  test("when a tenant asks for another tenant's entries, then 404 like an unknown tenant", async () => {
    const a = await tenantWithActivity();
    const b = await tenantWithActivity();
    const other = await stack.request('GET', `/v1/audit?tenant_id=${b.tenantId}`, { token: a.token });
    const unknown = await stack.request('GET', '/v1/audit?tenant_id=no-such-tenant-xyz', { token: a.token });
    expectProblem(other, 404, 'tenant_not_found');
    expectProblem(unknown, 404, 'tenant_not_found');
    expect({ ...other.body, request_id: undefined }).toEqual({ ...unknown.body, request_id: undefined });
    // Naming its own tenant explicitly is fine.
    expect((await stack.request('GET', `/v1/audit?tenant_id=${a.tenantId}`, { token: a.token })).status).toBe(200);
  });

  test('when the admin filters by tenant_id and event_type, then only matching entries come back', async () => {
    const a = await tenantWithActivity();
    await a.issue('vm:read');
    const b = await tenantWithActivity();

    const byTenant: Entry[] = (await stack.request('GET', `/v1/audit?tenant_id=${a.tenantId}`, { token: stack.adminToken })).body.items;
    expect(byTenant.length).toBeGreaterThanOrEqual(4);
    expect(byTenant.every((e) => e.tenant_id === a.tenantId)).toBe(true);

    const issued: Entry[] = (await stack.request('GET', `/v1/audit?tenant_id=${a.tenantId}&event_type=TOKEN_ISSUED`, { token: stack.adminToken })).body.items;
    expect(issued).toHaveLength(2); // the tenant-admin token from createTenant and the vm:read one
    expect(issued.every((e) => e.event_type === 'TOKEN_ISSUED' && e.tenant_id === a.tenantId)).toBe(true);

    const createdAnywhere: Entry[] = await readAll(stack.adminToken, 'event_type=TENANT_CREATED&limit=500');
    expect(createdAnywhere.every((e) => e.event_type === 'TENANT_CREATED')).toBe(true);
    expect(createdAnywhere.map((e) => e.tenant_id)).toEqual(expect.arrayContaining([a.tenantId, b.tenantId]));
  });

  test('when entries are paged with limit, then next_cursor walks them in order without gaps or repeats', async () => {
    const t = await tenantWithActivity();
    for (const scope of ['vm:read', 'vm:write', 'audit:read']) await t.issue(scope);
    const all: Entry[] = (await stack.request('GET', `/v1/audit?tenant_id=${t.tenantId}&limit=500`, { token: stack.adminToken })).body.items;
    expect(all.length).toBe(6); // TENANT_CREATED, QUOTA_CHANGED and four TOKEN_ISSUED

    const first = await stack.request('GET', `/v1/audit?tenant_id=${t.tenantId}&limit=2`, { token: stack.adminToken });
    expect(first.body.items).toHaveLength(2);
    expect(first.body.next_cursor).toBe(first.body.items[1].seq);

    const paged = await readAll(stack.adminToken, `tenant_id=${t.tenantId}&limit=2`);
    expect(paged.map((e) => e.event_id)).toEqual(all.map((e) => e.event_id));
    const seqs = paged.map((e) => BigInt(e.seq!));
    expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!)).toBe(true);

    // A tenant token pages the same way.
    expect((await readAll(t.token, 'limit=3')).map((e) => e.event_id)).toEqual(all.map((e) => e.event_id));
  });

  test('when a vm:read or vm:write token reads the ledger, then 403', async () => {
    const t = await tenantWithActivity();
    for (const scope of ['vm:read', 'vm:write']) {
      const token = await t.issue(scope);
      expectProblem(await stack.request('GET', '/v1/audit', { token }), 403, 'insufficient_scope');
    }
  });

  test.each(['limit=0', 'limit=501', 'event_type=NOPE', 'cursor=abc', 'since=yesterday', 'tenant_id=BAD', 'colour=red'])(
    'when the query is %s, then 400 invalid_request',
    async (query) => {
      expectProblem(await stack.request('GET', `/v1/audit?${query}`, { token: stack.adminToken }), 400, 'invalid_request');
    },
  );

  test('when no token is sent, then 401', async () => {
    const res = await stack.request('GET', '/v1/audit');
    expectProblem(res, 401, 'unauthenticated');
  });
});
