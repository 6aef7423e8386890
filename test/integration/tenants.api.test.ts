import { hashToken } from '../../src/auth/token-format';
import { createTenant, eventually, SMALL_VM, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';
import { uniqueName } from '../helpers/test-env';

/** The part of a GET /v1/audit item these tests look at. */
interface AuditItem {
  tenant_id: string | null;
  event_type: string;
  actor: { token_id: string | null; scope: string | null };
  details: { token_id?: string; revoked_token_ids?: string[]; [key: string]: unknown };
}

function newTenantId(prefix = 't'): string {
  return uniqueName(prefix)
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
}

function validBody(tenantId: string): Record<string, unknown> {
  return { tenant_id: tenantId, display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 };
}

/** Every error is an RFC 9457 problem with a stable code; nothing the client sends is a 500. */
function expectProblem(res: ApiResponse, status: number, code: string): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({ status, code });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
}

function expectInvalidField(res: ApiResponse, field: string): void {
  expectProblem(res, 400, 'invalid_request');
  expect(res.body.detail).toContain(field);
  expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
}

describe('tenants API', () => {
  let stack: TestStack;
  let adminTokenId: string;

  beforeAll(async () => {
    stack = await startTestStack();
    const row = await stack.db.selectFrom('api_tokens').select('token_id').where('token_hash', '=', hashToken(stack.adminToken)).executeTakeFirstOrThrow();
    adminTokenId = row.token_id;
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function auditOf(tenantId: string, eventType: string) {
    const res = await stack.request('GET', `/v1/audit?tenant_id=${tenantId}&event_type=${eventType}`, { token: stack.adminToken });
    expect(res.status).toBe(200);
    return res.body.items as AuditItem[];
  }

  describe('POST /v1/tenants', () => {
    test('when the admin posts the how-to step 1 body, then 201 returns the record with created_at and the ledger records TENANT_CREATED by the admin token', async () => {
      const tenantId = newTenantId();
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: validBody(tenantId) });
      expect(res.status).toBe(201);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(res.body).toMatchObject({ ...validBody(tenantId), deleted_at: null });
      expect(new Date(res.body.created_at).toISOString()).toBe(res.body.created_at);
      expect(Date.now() - Date.parse(res.body.created_at)).toBeLessThan(60_000);

      const entries = await auditOf(tenantId, 'TENANT_CREATED');
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        tenant_id: tenantId,
        event_type: 'TENANT_CREATED',
        actor: { token_id: adminTokenId, scope: 'service:admin' },
        details: { display_name: 'Acme Corporation', max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600 },
      });
    });

    test('when the tenant id already exists, then 409 tenant_exists and the first record is unchanged', async () => {
      const tenantId = newTenantId();
      expect((await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: validBody(tenantId) })).status).toBe(201);
      const again = await stack.request('POST', '/v1/tenants', {
        token: stack.adminToken,
        body: { ...validBody(tenantId), display_name: 'Impostor', max_vms: 99 },
      });
      expectProblem(again, 409, 'tenant_exists');
      const got = await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken });
      expect(got.body).toMatchObject({ display_name: 'Acme Corporation', max_vms: 10 });
      expect(await auditOf(tenantId, 'TENANT_CREATED')).toHaveLength(1);
    });

    test('when a deleted tenant id is posted again, then 409 tenant_exists (ids are never reused)', async () => {
      const tenantId = newTenantId();
      expect((await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: validBody(tenantId) })).status).toBe(201);
      expect((await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).status).toBe(200);
      expectProblem(await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: validBody(tenantId) }), 409, 'tenant_exists');
    });

    test.each([
      ['uppercase', 'Acme-corp'],
      ['too short', 'ab'],
      ['too long (64)', `a${'b'.repeat(63)}`],
      ['way too long', 'a'.repeat(1000)],
      ['leading digit', '1acme'],
      ['leading hyphen', '-acme'],
      ['trailing hyphen', 'acme-'],
      ['unicode', 'acmé-corp'],
      ['fullwidth unicode', 'ａｃｍｅ'],
      ['SQL-ish', "acme'; drop table tenants;--"],
      ['underscore', 'acme_corp'],
      ['dot', 'acme.corp'],
      ['space', 'acme corp'],
      ['empty', ''],
      ['number', 12345],
      ['null', null],
      ['array', ['acme-corp']],
    ])('when tenant_id is %s, then 400 invalid_request naming tenant_id', async (_label, tenantId) => {
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: { ...validBody('x'), tenant_id: tenantId } });
      expectInvalidField(res, 'tenant_id');
    });

    test('when tenant_id is exactly 63 characters, then it is accepted', async () => {
      const base = newTenantId('l');
      const tenantId = (base + 'x'.repeat(63)).slice(0, 63);
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: validBody(tenantId) });
      expect(res.status).toBe(201);
    });

    test.each(['tenant_id', 'display_name', 'max_vms', 'storage_quota_gb', 'api_rate_limit_rpm'])('when %s is missing, then 400 naming it', async (field) => {
      const body = validBody(newTenantId());
      delete body[field];
      expectInvalidField(await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body }), field);
    });

    const badQuotas: Array<[string, unknown]> = [
      ['zero', 0],
      ['negative', -1],
      ['fractional', 1.5],
      ['huge', 1e20],
      ['above the bound', 10_000_001],
      ['a string number', '10'],
      ['a boolean', true],
      ['null', null],
      ['an object', { value: 1 }],
    ];
    for (const field of ['max_vms', 'storage_quota_gb', 'api_rate_limit_rpm']) {
      test.each(badQuotas)(`when ${field} is %s, then 400 naming ${field}`, async (_label, value) => {
        const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: { ...validBody(newTenantId()), [field]: value } });
        expectInvalidField(res, field);
      });
    }

    test.each([
      ['empty', ''],
      ['only spaces', '   '],
      ['too long', 'A'.repeat(201)],
      ['a NUL character', 'Acme\u0000Corp'],
      ['a bell character', 'Acme\u0007Corp'],
      ['an escape sequence', 'Acme\u001b[31mCorp'],
      ['a newline inside', 'Acme\nCorp'],
      ['a number', 42],
    ])('when display_name is %s, then 400 naming display_name', async (_label, value) => {
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: { ...validBody(newTenantId()), display_name: value } });
      expectInvalidField(res, 'display_name');
    });

    test('when the body has an unknown extra field, then 400 naming it', async () => {
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: { ...validBody(newTenantId()), owner: 'mallory' } });
      expectInvalidField(res, 'owner');
    });

    test('when several fields are invalid, then every one is named in errors', async () => {
      const res = await stack.request('POST', '/v1/tenants', {
        token: stack.adminToken,
        body: { tenant_id: 'X', display_name: '', max_vms: 0, storage_quota_gb: -1, api_rate_limit_rpm: 'fast' },
      });
      expectProblem(res, 400, 'invalid_request');
      expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual([
        'api_rate_limit_rpm',
        'display_name',
        'max_vms',
        'storage_quota_gb',
        'tenant_id',
      ]);
    });

    test.each([
      ['a JSON array', '[]'],
      ['a JSON string', '"acme"'],
      ['JSON null', 'null'],
    ])('when the body is %s, then 400 invalid_request', async (_label, rawBody) => {
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, rawBody, headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(400);
      expect(['invalid_request', 'malformed_json']).toContain(res.body.code);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });

    test.each([
      ['truncated', '{"tenant_id": "acme-corp", '],
      ['single quotes', "{'tenant_id': 'acme-corp'}"],
      ['trailing comma', '{"tenant_id": "acme-corp",}'],
      ['not JSON at all', 'hello'],
    ])('when the JSON is malformed (%s), then 400 malformed_json', async (_label, rawBody) => {
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, rawBody, headers: { 'content-type': 'application/json' } });
      expectProblem(res, 400, 'malformed_json');
    });

    test.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml', 'multipart/form-data; boundary=x'])(
      'when the content type is %s, then 415 unsupported_media_type',
      async (contentType) => {
        const res = await stack.request('POST', '/v1/tenants', {
          token: stack.adminToken,
          rawBody: JSON.stringify(validBody(newTenantId())),
          headers: { 'content-type': contentType },
        });
        expectProblem(res, 415, 'unsupported_media_type');
      },
    );

    test('when a body is sent without a content type, then 415', async () => {
      const res = await fetch(`${stack.apiUrl}/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.adminToken}` },
        body: new Uint8Array(Buffer.from(JSON.stringify(validBody(newTenantId())))),
      });
      expect(res.status).toBe(415);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    });

    test('when the body is larger than 64 KiB, then 413 payload_too_large', async () => {
      const rawBody = JSON.stringify({ ...validBody(newTenantId()), display_name: 'A'.repeat(70 * 1024) });
      const res = await stack.request('POST', '/v1/tenants', { token: stack.adminToken, rawBody, headers: { 'content-type': 'application/json' } });
      expectProblem(res, 413, 'payload_too_large');
    });

    test('when the charset is not UTF-8, then 415', async () => {
      const res = await stack.request('POST', '/v1/tenants', {
        token: stack.adminToken,
        rawBody: JSON.stringify(validBody(newTenantId())),
        headers: { 'content-type': 'application/json; charset=koi8-r' },
      });
      expectProblem(res, 415, 'unsupported_media_type');
    });

    test('when a tenant token creates a tenant, then 403 and nothing is created', async () => {
      const { token } = await createTenant(stack);
      const tenantId = newTenantId();
      expectProblem(await stack.request('POST', '/v1/tenants', { token, body: validBody(tenantId) }), 403, 'insufficient_scope');
      expectProblem(await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken }), 404, 'tenant_not_found');
    });

    test('when no token is sent, then 401 before the body is validated', async () => {
      const res = await stack.request('POST', '/v1/tenants', { body: { tenant_id: 'X' } });
      expectProblem(res, 401, 'unauthenticated');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    });
  });

  describe('GET /v1/tenants', () => {
    test('when the admin pages with limit, then next_cursor walks the list without gaps or repeats', async () => {
      const prefix = newTenantId('pg');
      const ids = [`${prefix}-a`, `${prefix}-b`, `${prefix}-c`];
      for (const id of ids) expect((await stack.request('POST', '/v1/tenants', { token: stack.adminToken, body: validBody(id) })).status).toBe(201);

      // Tenant ids sort by name; start just before ours so other tests' tenants do not interfere.
      const first = await stack.request('GET', `/v1/tenants?limit=2&cursor=${prefix}-`, { token: stack.adminToken });
      expect(first.status).toBe(200);
      expect(first.body.items.map((t: { tenant_id: string }) => t.tenant_id)).toEqual(ids.slice(0, 2));
      expect(first.body.next_cursor).toBe(ids[1]);
      expect(first.body.items[0]).toMatchObject(validBody(ids[0]!));
      const second = await stack.request('GET', `/v1/tenants?limit=2&cursor=${first.body.next_cursor}`, { token: stack.adminToken });
      expect(second.body.items[0].tenant_id).toBe(ids[2]);
    });

    test('when the admin walks every page, then each tenant appears exactly once and the last page has no cursor', async () => {
      const { tenantId } = await createTenant(stack);
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 1000; page++) {
        const query: string = cursor ? `limit=100&cursor=${encodeURIComponent(cursor)}` : 'limit=100';
        const res: ApiResponse = await stack.request('GET', `/v1/tenants?${query}`, { token: stack.adminToken });
        expect(res.status).toBe(200);
        expect(res.body.items.length).toBeLessThanOrEqual(100);
        seen.push(...res.body.items.map((t: { tenant_id: string }) => t.tenant_id));
        cursor = res.body.next_cursor;
        if (!cursor) break;
      }
      expect(cursor).toBeNull();
      expect(new Set(seen).size).toBe(seen.length);
      expect(seen).toContain(tenantId);
    });

    test.each(['limit=0', 'limit=101', 'limit=abc', 'limit=-1', 'unknown=1'])('when the query is %s, then 400 invalid_request', async (query) => {
      expectProblem(await stack.request('GET', `/v1/tenants?${query}`, { token: stack.adminToken }), 400, 'invalid_request');
    });

    test('when a tenant token lists tenants, then 403', async () => {
      const { token } = await createTenant(stack);
      expectProblem(await stack.request('GET', '/v1/tenants', { token }), 403, 'insufficient_scope');
    });
  });

  describe('GET /v1/tenants/:tenant_id', () => {
    test("when the admin or the tenant's own tenant-admin reads it, then 200 with the record", async () => {
      const { tenantId, token } = await createTenant(stack);
      for (const t of [stack.adminToken, token]) {
        const res = await stack.request('GET', `/v1/tenants/${tenantId}`, { token: t });
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ tenant_id: tenantId, max_vms: 10, created_at: expect.any(String) });
      }
    });

    test("when another tenant's token reads it, then 404 with the same body as a nonexistent tenant", async () => {
      const a = await createTenant(stack);
      const b = await createTenant(stack);
      const other = await stack.request('GET', `/v1/tenants/${a.tenantId}`, { token: b.token });
      const missingId = newTenantId('nope');
      const missing = await stack.request('GET', `/v1/tenants/${missingId}`, { token: b.token });
      expectProblem(other, 404, 'tenant_not_found');
      expectProblem(missing, 404, 'tenant_not_found');
      const shape = (body: Record<string, unknown>) => ({ ...body, instance: undefined, request_id: undefined });
      expect(shape(other.body)).toEqual(shape(missing.body));
      expect(Object.keys(other.body).sort()).toEqual(Object.keys(missing.body).sort());
    });

    test('when the id is malformed, then 404 like any unknown tenant', async () => {
      expectProblem(await stack.request('GET', `/v1/tenants/${encodeURIComponent("x'; select 1;--")}`, { token: stack.adminToken }), 404, 'tenant_not_found');
      expectProblem(await stack.request('GET', '/v1/tenants/ACME', { token: stack.adminToken }), 404, 'tenant_not_found');
    });
  });

  describe('PATCH /v1/tenants/:tenant_id', () => {
    test('when the admin changes a quota, then it is stored and QUOTA_CHANGED records before and after', async () => {
      const { tenantId } = await createTenant(stack);
      const res = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 25, api_rate_limit_rpm: 1200 } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ tenant_id: tenantId, max_vms: 25, api_rate_limit_rpm: 1200, storage_quota_gb: 100 });
      expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).body.max_vms).toBe(25);

      const entries = await auditOf(tenantId, 'QUOTA_CHANGED');
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        actor: { token_id: adminTokenId, scope: 'service:admin' },
        details: { before: { max_vms: 10, api_rate_limit_rpm: 600 }, after: { max_vms: 25, api_rate_limit_rpm: 1200 } },
      });
    });

    test('when the body contains tenant_id, then 400 naming tenant_id and nothing changes', async () => {
      const { tenantId } = await createTenant(stack);
      for (const body of [{ tenant_id: 'renamed-tenant' }, { tenant_id: tenantId, max_vms: 3 }]) {
        expectInvalidField(await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body }), 'tenant_id');
      }
      expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).body.max_vms).toBe(10);
      expect(await auditOf(tenantId, 'QUOTA_CHANGED')).toHaveLength(0);
    });

    test.each([
      ['an empty body', {}, '(body)'],
      ['zero max_vms', { max_vms: 0 }, 'max_vms'],
      ['a fractional quota', { storage_quota_gb: 2.5 }, 'storage_quota_gb'],
      ['an unknown field', { colour: 'red' }, 'colour'],
    ])('when the patch has %s, then 400', async (_label, body, field) => {
      const { tenantId } = await createTenant(stack);
      const res = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body });
      expectProblem(res, 400, 'invalid_request');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    });

    test('when a tenant-admin patches its own tenant, then 403 and nothing changes', async () => {
      const { tenantId, token } = await createTenant(stack);
      expectProblem(await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token, body: { max_vms: 1000 } }), 403, 'insufficient_scope');
      expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).body.max_vms).toBe(10);
    });

    test('when the tenant does not exist, then 404', async () => {
      expectProblem(
        await stack.request('PATCH', `/v1/tenants/${newTenantId('nope')}`, { token: stack.adminToken, body: { max_vms: 2 } }),
        404,
        'tenant_not_found',
      );
    });
  });

  describe('DELETE /v1/tenants/:tenant_id', () => {
    test("when the tenant has a VM, then 409 tenant_has_vms; once it is destroyed, the delete succeeds, is recorded, and the tenant's tokens get 401", async () => {
      const { tenantId, token } = await createTenant(stack);
      const subToken = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
        token,
        body: { subject_pubkey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFS6gN+61SWOguzCwIDCVr+rQWxQPArA323Uq2D18csN', scope: 'vm:read', expires_in_seconds: 600 },
      });
      expect(subToken.status).toBe(201);
      const spawned = await stack.request('POST', '/v1/vms', { token, body: { ...SMALL_VM } });
      expect(spawned.status).toBe(202);
      const vmId = spawned.body.vm_id;

      expectProblem(await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken }), 409, 'tenant_has_vms');
      expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).status).toBe(200);

      await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'running', 30_000, 'VM running');
      expectProblem(await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken }), 409, 'tenant_has_vms');
      expect((await stack.request('DELETE', `/v1/vms/${vmId}`, { token })).status).toBe(202);
      await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'destroyed', 30_000, 'VM destroyed');

      const deleted = await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken });
      expect(deleted.status).toBe(200);
      expect(deleted.body).toMatchObject({ tenant_id: tenantId, deleted_at: expect.any(String) });

      const entries = await auditOf(tenantId, 'TENANT_DELETED');
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ tenant_id: tenantId, actor: { token_id: adminTokenId, scope: 'service:admin' } });

      for (const t of [token, subToken.body.token as string]) {
        const res = await stack.request('GET', '/v1/vms', { token: t });
        expectProblem(res, 401, 'invalid_token');
        expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      expectProblem(await stack.request('GET', `/v1/tenants/${tenantId}`, { token: stack.adminToken }), 404, 'tenant_not_found');
      expectProblem(await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken }), 404, 'tenant_not_found');
    });

    test('when a tenant-admin deletes its own tenant, then 403', async () => {
      const { tenantId, token } = await createTenant(stack);
      expectProblem(await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token }), 403, 'insufficient_scope');
    });
  });

  test('when any of the requests above failed, then none of them was a 500 or logged as unhandled', () => {
    const unhandled = stack.logLines.filter((line) => line.includes('unhandled error') || /"status":5\d\d/.test(line));
    expect(unhandled).toEqual([]);
  });
});
