/**
 * Headers that would let a caller pick its tenant or spoof its origin are ignored (issue 4,
 * section 3): the tenant comes from the token alone, the client address in the audit from the
 * socket — unless the request came through a proxy listed in TRUSTED_PROXIES — and the request id
 * is always the server's own: a client's X-Request-Id is kept apart as client_request_id (issue 9,
 * item 6), and dropped when it is not safe to log.
 */
import { randomUUID } from 'node:crypto';
import { uniqueName } from '../helpers/test-env';
import { createTenant, SAMPLE_PUBKEY, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

// Generous: a loaded 2-core machine runs Temporal, Postgres, NATS and two Jest workers at once.
jest.setTimeout(120_000);

const LOOPBACK = ['127.0.0.1', '::ffff:127.0.0.1'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const SPOOFING = {
  'X-Forwarded-For': '203.0.113.7, 198.51.100.9',
  Forwarded: 'for=203.0.113.8;proto=https;host=evil.example, for="[2001:db8::1]"',
  'X-Real-IP': '203.0.113.9',
  'X-Client-IP': '203.0.113.10',
  'True-Client-IP': '203.0.113.11',
  'CF-Connecting-IP': '203.0.113.12',
  'X-Forwarded-Host': 'evil.example',
};

interface AuditItem {
  tenant_id: string | null;
  event_type: string;
  vm_id: string | null;
  source: { ip: string | null; request_id: string | null };
  details: Record<string, unknown>;
}

/** A cheap audited write of the token's tenant: issuing a read-only token. */
function issueToken(stack: TestStack, tenantId: string, token: string, headers: Record<string, string>) {
  return stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
    token,
    headers,
    body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 600 },
  });
}

async function auditOf(stack: TestStack, token: string, query = ''): Promise<AuditItem[]> {
  const res = await stack.request('GET', `/v1/audit?limit=500${query}`, { token });
  expect(res.status).toBe(200);
  return res.body.items as AuditItem[];
}

describe('hostile headers, no trusted proxy configured', () => {
  let stack: TestStack;
  let a: { tenantId: string; token: string };
  let b: { tenantId: string; token: string };

  beforeAll(async () => {
    stack = await startTestStack();
    a = await createTenant(stack);
    b = await createTenant(stack);
    for (const tenant of [a, b]) {
      const spawned = await stack.request('POST', '/v1/vms', { token: tenant.token, body: SMALL_VM });
      if (spawned.status !== 202) throw new Error(`VM not spawned: ${spawned.status} ${JSON.stringify(spawned.body)}`);
    }
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when a tenant spawns a VM naming another tenant in X-Tenant-Id and a spoofed origin, then the VM lands in its own tenant and the audit shows the socket address', async () => {
    const requestId = uniqueName('hdr');
    const spawned = await stack.request('POST', '/v1/vms', {
      token: a.token,
      body: SMALL_VM,
      headers: { ...SPOOFING, 'X-Tenant-Id': b.tenantId, 'X-Request-Id': requestId },
    });
    expect(spawned.status).toBe(202);
    expect(spawned.body.tenant_id).toBe(a.tenantId);
    const serverId = spawned.headers.get('x-request-id');
    expect(serverId).toMatch(UUID);

    const row = await stack.db.selectFrom('vms').select(['tenant_id']).where('vm_id', '=', spawned.body.vm_id).executeTakeFirstOrThrow();
    expect(row.tenant_id).toBe(a.tenantId);
    const bVms = await stack.db.selectFrom('vms').select('vm_id').where('tenant_id', '=', b.tenantId).execute();
    expect(bVms.map((vm) => vm.vm_id)).not.toContain(spawned.body.vm_id);

    const entries = (await auditOf(stack, a.token)).filter((entry) => entry.source.request_id === serverId);
    expect(entries.map((entry) => entry.event_type)).toContain('VM_SPAWN_REQUESTED');
    for (const entry of entries) {
      expect(entry.tenant_id).toBe(a.tenantId);
      expect(entry.details.client_request_id).toBe(requestId);
      expect(LOOPBACK).toContain(entry.source.ip);
    }
    expect((await auditOf(stack, b.token)).filter((entry) => entry.source.request_id === serverId || entry.details.client_request_id === requestId)).toEqual(
      [],
    );
  });

  test('when a tenant reads with X-Tenant-Id naming another tenant, then it sees its own tenant only', async () => {
    const foreign = { 'X-Tenant-Id': b.tenantId };
    const ownVms = await stack.request('GET', '/v1/vms', { token: a.token, headers: foreign });
    expect(ownVms.status).toBe(200);
    expect(ownVms.body.items.every((vm: { tenant_id: string }) => vm.tenant_id === a.tenantId)).toBe(true);

    // Naming the other tenant in the query as well does not help a tenant token: it is ignored.
    const viaQuery = await stack.request('GET', `/v1/vms?tenant_id=${b.tenantId}`, { token: a.token, headers: foreign });
    expect(viaQuery.status).toBe(200);
    expect(viaQuery.body.items.length).toBeGreaterThan(0);
    expect(viaQuery.body.items.every((vm: { tenant_id: string }) => vm.tenant_id === a.tenantId)).toBe(true);

    const audit = await auditOf(stack, a.token);
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.every((entry) => entry.tenant_id === a.tenantId)).toBe(true);

    const otherTenant = await stack.request('GET', `/v1/tenants/${b.tenantId}`, { token: a.token, headers: foreign });
    expect(otherTenant.status).toBe(404);
    expect(otherTenant.body.code).toBe('tenant_not_found');
  });

  test('when a tenant writes with X-Tenant-Id and a spoofed origin, then the audit entry is its own tenant with the socket address', async () => {
    const requestId = uniqueName('hdr');
    const issued = await issueToken(stack, a.tenantId, a.token, { ...SPOOFING, 'X-Tenant-Id': b.tenantId, 'X-Request-Id': requestId });
    expect(issued.status).toBe(201);
    expect(issued.body.tenant_id).toBe(a.tenantId);

    const serverId = issued.headers.get('x-request-id');
    const [entry, ...rest] = await auditOf(stack, a.token, `&event_type=TOKEN_ISSUED`).then((items) =>
      items.filter((item) => item.source.request_id === serverId),
    );
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ tenant_id: a.tenantId, event_type: 'TOKEN_ISSUED' });
    expect(LOOPBACK).toContain(entry!.source.ip);
  });

  test.each([
    ['with spaces and markup', 'id <script>alert(1)</script>'],
    ['with a newline-like escape', 'abc%0d%0aSet-Cookie:x'],
    ['with NATS wildcards', 'a.*.>'],
    ['with SQL', "1'; drop table audit_events; --"],
    ['longer than 128 characters', 'a'.repeat(129)],
    ['with non-ASCII', 'id-\u00e9\u00e8'],
    ['empty', ''],
  ])('when X-Request-Id is junk (%s), then the answer and the audit carry the generated id and no client_request_id', async (_label, junk) => {
    const issued = await issueToken(stack, a.tenantId, a.token, { 'X-Request-Id': junk });
    expect(issued.status).toBe(201);
    const assigned = issued.headers.get('x-request-id');
    expect(assigned).toMatch(UUID);
    expect(assigned).not.toBe(junk);

    const entries = (await auditOf(stack, a.token, '&event_type=TOKEN_ISSUED')).filter((entry) => entry.source.request_id === assigned);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.tenant_id).toBe(a.tenantId);
    expect(entries[0]!.details).not.toHaveProperty('client_request_id');
  });

  test('when X-Request-Id is well formed, then the server still uses its own id and keeps the client one apart as client_request_id in the audit and the log', async () => {
    const offered = `corr-${randomUUID()}`;
    const issued = await issueToken(stack, a.tenantId, a.token, { 'X-Request-Id': offered });
    expect(issued.status).toBe(201);
    const serverId = issued.headers.get('x-request-id');
    expect(serverId).toMatch(UUID);
    expect(serverId).not.toBe(offered);
    const audit = await auditOf(stack, a.token);
    expect(audit.filter((entry) => entry.source.request_id === offered)).toEqual([]);
    const entries = audit.filter((entry) => entry.source.request_id === serverId);
    expect(entries.map((entry) => [entry.event_type, entry.details.client_request_id])).toEqual([['TOKEN_ISSUED', offered]]);
    const logged = stack.logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.request_id === serverId);
    expect(logged).toEqual([expect.objectContaining({ msg: 'request', client_request_id: offered })]);
  });

  test('when two requests offer the same X-Request-Id, then each gets its own server id', async () => {
    const offered = `dup-${randomUUID()}`;
    const [first, second] = await Promise.all([1, 2].map(() => stack.request('GET', '/v1/vms', { token: a.token, headers: { 'X-Request-Id': offered } })));
    expect(first!.headers.get('x-request-id')).not.toBe(second!.headers.get('x-request-id'));
    expect(first!.headers.get('x-request-id')).not.toBe(offered);
  });

  test('when an error answer follows a junk X-Request-Id, then the problem carries the generated id, not the junk', async () => {
    const junk = 'x y z';
    const res = await stack.request('GET', '/v1/tenants/no-such-tenant', { token: a.token, headers: { 'X-Request-Id': junk } });
    expect(res.status).toBe(404);
    expect(res.body.request_id).toMatch(UUID);
    expect(res.headers.get('x-request-id')).toBe(res.body.request_id);
  });
});

describe('hostile headers, with 127.0.0.1 configured as a trusted proxy', () => {
  let stack: TestStack;
  let a: { tenantId: string; token: string };

  beforeAll(async () => {
    stack = await startTestStack({ withWorker: false, configOverrides: { TRUSTED_PROXIES: '127.0.0.1' } });
    a = await createTenant(stack);
  });
  afterAll(async () => {
    await stack?.close();
  });

  async function sourceIpOf(headers: Record<string, string>): Promise<string | null> {
    const requestId = uniqueName('prx');
    const issued = await issueToken(stack, a.tenantId, a.token, { ...headers, 'X-Request-Id': requestId });
    expect(issued.status).toBe(201);
    const serverId = issued.headers.get('x-request-id');
    const entries = (await auditOf(stack, a.token, '&event_type=TOKEN_ISSUED')).filter((entry) => entry.source.request_id === serverId);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.details.client_request_id).toBe(requestId);
    return entries[0]!.source.ip;
  }

  test('when the trusted proxy forwards X-Forwarded-For, then the audit records the client address it names', async () => {
    expect(await sourceIpOf({ 'X-Forwarded-For': '203.0.113.7' })).toBe('203.0.113.7');
  });

  test('when X-Forwarded-For holds a chain, then the address nearest the trusted proxy is recorded, not one the client wrote first', async () => {
    // The client can prepend anything; only the hop the trusted proxy appended is believed.
    expect(await sourceIpOf({ 'X-Forwarded-For': '198.51.100.1, 203.0.113.7' })).toBe('203.0.113.7');
  });

  test('when only X-Real-IP, Forwarded or similar headers are sent, then they are ignored and the socket address is recorded', async () => {
    const { 'X-Forwarded-For': _xff, ...others } = SPOOFING;
    expect(LOOPBACK).toContain(await sourceIpOf(others));
  });

  test('when a tenant token names another tenant in X-Tenant-Id through the trusted proxy, then the action still lands in its own tenant', async () => {
    const issued = await issueToken(stack, a.tenantId, a.token, { 'X-Tenant-Id': 'some-other-tenant', 'X-Forwarded-For': '203.0.113.7' });
    expect(issued.status).toBe(201);
    expect(issued.body.tenant_id).toBe(a.tenantId);
  });
});
