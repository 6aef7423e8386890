/**
 * Negative authorization matrix (issue 4, section 1; seed 004 follow-up
 * SEC-ARCH-TENANT-AUTHZ-NEGATIVE-MATRIX-001; issue 9, item 8).
 *
 * authz-matrix.json lists every route with the action it performs and what it targets; the
 * expected status of every route x caller comes from the policy table in authz-policy.ts (scopes
 * -> allowed actions, and the disclosure rules), written independently of the routes. This file
 * 1. checks the matrix against the route table of the Express app itself (the CI gate),
 * 2. runs every cell over HTTP against the real API with real data in tenants A and B, checking
 *    the status, the problem+json shape, and that a refused or read-only request changed nothing
 *    in Postgres or at the fleet simulator, and that an allowed write really happened in Postgres,
 * 3. checks that another tenant's object answers exactly like a missing one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { generateToken, hashToken, newTokenId } from '../../src/auth/token-format';
import { isTenantId } from '../../src/shared/tenant-id';
import { serveApi } from '../helpers/api-server';
import { listExpressRoutes } from '../helpers/express-routes';
import { fleetStats } from '../../src/fleet-simulator/sim-client';
import { uniqueName } from '../helpers/test-env';
import { createTenant, eventually, SAMPLE_PUBKEY, SMALL_VM, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';
import { ACTIONS, expectedStatus, type Action, type PolicyCaller, type Target } from './authz-policy';

const CALLERS = [
  'no_token',
  'malformed_token',
  'unknown_token',
  'expired_token',
  'revoked_token',
  'deleted_tenant_token',
  'other_tenant_admin',
  'other_tenant_read_only',
  'same_tenant_read_only',
  'same_tenant_writer',
  'same_tenant_auditor',
  'same_tenant_admin',
  'platform_admin',
] as const;
type Caller = (typeof CALLERS)[number];

/** Who each caller is, in the policy's terms. Rows always target tenant A. */
const IDENTITY: Record<Caller, PolicyCaller> = {
  no_token: { scope: null, tenant: null },
  malformed_token: { scope: null, tenant: null },
  unknown_token: { scope: null, tenant: null },
  expired_token: { scope: null, tenant: null },
  revoked_token: { scope: null, tenant: null },
  deleted_tenant_token: { scope: null, tenant: null },
  other_tenant_admin: { scope: 'service:tenant-admin', tenant: 'B' },
  other_tenant_read_only: { scope: 'vm:read', tenant: 'B' },
  same_tenant_read_only: { scope: 'vm:read', tenant: 'A' },
  same_tenant_writer: { scope: 'vm:write', tenant: 'A' },
  same_tenant_auditor: { scope: 'audit:read', tenant: 'A' },
  same_tenant_admin: { scope: 'service:tenant-admin', tenant: 'A' },
  platform_admin: { scope: 'service:admin', tenant: null },
};

type Template = string | number | boolean | null | Template[] | { [key: string]: Template };

interface MatrixRow {
  method: string;
  path: string;
  public?: boolean;
  action?: Action;
  target?: Target;
  mutates?: boolean;
  params?: Record<string, string>;
  success_params?: Record<string, string>;
  query?: Record<string, string>;
  body?: Template;
  /** What an authorized call answers in these test stacks when it cannot be 2xx here (see its note). */
  success_status?: number;
  note?: string;
}

const matrix = JSON.parse(readFileSync(path.join(__dirname, 'authz-matrix.json'), 'utf8')) as { routes: MatrixRow[] };
const routeKey = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

const isSuccess = (status: number) => status >= 200 && status < 300;

interface Cell {
  row: MatrixRow;
  caller: Caller;
  status: number;
  /** A 2xx cell of a route that writes: it gets throwaway targets and runs after the others. */
  writes: boolean;
}

/** The policy's answer; public routes (probes, the API description) answer everyone. */
function expected(row: MatrixRow, caller: Caller): number {
  if (row.public) return 200;
  const status = expectedStatus(IDENTITY[caller], row.action!, row.target!, 'A');
  return isSuccess(status) && row.success_status !== undefined ? row.success_status : status;
}

const cells: Cell[] = matrix.routes.flatMap((row) =>
  CALLERS.map((caller) => ({ row, caller, status: expected(row, caller), writes: Boolean(row.mutates) && isSuccess(expected(row, caller)) })),
);
const cellName = (cell: Cell) => `when ${cell.caller} calls ${routeKey(cell.row)}, then ${cell.status}`;

describe('authorization matrix: CI gate', () => {
  // The app as the server builds it (buildApi): every optional part is present, so no route hides.
  let registered: string[] = [];
  beforeAll(async () => {
    const served = await serveApi();
    registered = listExpressRoutes(served.api.app).map(routeKey);
    await served.close();
  });
  const described = matrix.routes.map(routeKey);

  test('when the Express app is built, then every route it registers has a row in authz-matrix.json', () => {
    expect(registered.length).toBeGreaterThan(0);
    expect(registered.filter((key) => !described.includes(key))).toEqual([]);
  });

  test('when authz-matrix.json is read, then every row names a registered route, once, and every protected one a policy action and target', () => {
    expect(described.filter((key) => !registered.includes(key))).toEqual([]);
    expect(described.filter((key, i) => described.indexOf(key) !== i)).toEqual([]);
    const targets: Target[] = ['platform', 'named_tenant', 'own_tenant', 'tenant_object'];
    for (const row of matrix.routes) {
      if (row.public) continue;
      expect({ route: routeKey(row), action: ACTIONS.includes(row.action!), target: targets.includes(row.target!) }).toEqual({
        route: routeKey(row),
        action: true,
        target: true,
      });
      expect((row as unknown as Record<string, unknown>).expect).toBeUndefined(); // expectations come from the policy only
    }
    // Every action of the policy is reachable through some route, so none goes untested.
    expect(ACTIONS.filter((action) => !matrix.routes.some((row) => row.action === action))).toEqual([]);
  });

  test('when the policy is asked, then every caller kind gets every answer it could get somewhere (no caller is only ever refused or only ever allowed by accident)', () => {
    const answers = (caller: Caller) => new Set(matrix.routes.filter((row) => !row.public).map((row) => expected(row, caller)));
    expect([...answers('no_token')]).toEqual([401]);
    for (const caller of [
      'same_tenant_read_only',
      'same_tenant_writer',
      'same_tenant_auditor',
      'same_tenant_admin',
      'other_tenant_read_only',
      'other_tenant_admin',
      'platform_admin',
    ] as const) {
      expect({
        caller,
        allowedSomewhere: [...answers(caller)].some(isSuccess),
        refusedSomewhere: [...answers(caller)].some((status) => status >= 400),
      }).toEqual({ caller, allowedSomewhere: true, refusedSomewhere: true });
    }
  });
});

interface World {
  A: { tenantId: string; adminToken: string; readToken: string; spareTokenId: string; vmId: string };
  B: { tenantId: string; adminToken: string };
  C: { tenantId: string };
  tokens: Record<Exclude<Caller, 'no_token' | 'malformed_token'>, string>;
  /** token_id of each usable caller's token (null for the platform admin, whose token has no tenant). */
  tokenIds: Partial<Record<Caller, string | null>>;
}

/** The state of one tenant as Postgres and the fleet simulator hold it. */
interface TenantState {
  tenant: unknown;
  tokens: unknown[];
  vms: unknown[];
  audit: { count: number; last_seq: string | null };
  idempotency_keys: unknown[];
  fleet: unknown;
}

interface Snapshot {
  tenants: Record<string, TenantState>;
  fleet: { spawn_calls: number; creates: number; destroys: number };
}

/** Rows still to be decided, or with work in flight (docs/admission-protocol.md). */
const TRANSITIONAL = ['requested', 'provisioning', 'destroying'];

describe('authorization matrix over HTTP', () => {
  let stack: TestStack;
  let world: World;

  /**
   * Everything a request could change for the given tenants: their rows in tenants, api_tokens,
   * vms and idempotency_keys, their ledger length, and the fleet's call counters. Only the
   * api_rate_limits counters are left out: every authenticated tenant request consumes its own
   * tenant's budget, refused or not, which is the rate limit working rather than a state change.
   * Tenants other tests create in parallel are not ours to compare.
   */
  async function snapshot(tenantIds: readonly string[]): Promise<Snapshot> {
    const db = stack.db;
    const ids = [...new Set(tenantIds)];
    const [tenants, tokens, vms, audit, keys, fleet] = await Promise.all([
      db.selectFrom('tenants').selectAll().where('tenant_id', 'in', ids).execute(),
      db.selectFrom('api_tokens').selectAll().where('tenant_id', 'in', ids).orderBy('token_id').execute(),
      db.selectFrom('vms').selectAll().where('tenant_id', 'in', ids).orderBy('vm_id').execute(),
      db
        .selectFrom('audit_events')
        .select((eb) => ['tenant_id', eb.fn.countAll<string>().as('count'), eb.fn.max('seq').as('last_seq')])
        .where('tenant_id', 'in', ids)
        .groupBy('tenant_id')
        .execute(),
      db.selectFrom('idempotency_keys').selectAll().where('tenant_id', 'in', ids).orderBy('idempotency_key').execute(),
      fleetStats(stack.fleet.url),
    ]);
    const state: Record<string, TenantState> = {};
    for (const id of ids) {
      const ledger = audit.find((row) => row.tenant_id === id);
      state[id] = {
        tenant: tenants.find((row) => row.tenant_id === id) ?? null,
        tokens: tokens.filter((row) => row.tenant_id === id),
        vms: vms.filter((row) => row.tenant_id === id),
        audit: { count: Number(ledger?.count ?? 0), last_seq: ledger?.last_seq === undefined ? null : String(ledger.last_seq) },
        idempotency_keys: keys.filter((row) => row.tenant_id === id),
        fleet: fleet.by_tenant[id] ?? null,
      };
    }
    return { tenants: state, fleet: { spawn_calls: fleet.spawn_calls, creates: fleet.creates, destroys: fleet.destroys } };
  }

  const fixtureTenants = () => [world.A.tenantId, world.B.tenantId, world.C.tenantId];

  /** Waits until the fixture tenants' VMs have stopped moving and a snapshot holds still. */
  async function settle(extraTenants: string[] = []): Promise<void> {
    const ids = [...fixtureTenants(), ...extraTenants];
    await eventually(
      async () => {
        const moving = await stack.db.selectFrom('vms').select('vm_id').where('tenant_id', 'in', ids).where('status', 'in', TRANSITIONAL).execute();
        return moving.length === 0;
      },
      20_000,
      'VMs to settle',
    );
    await eventually(
      async () => {
        const first = await snapshot(ids);
        await sleep(150);
        return JSON.stringify(await snapshot(ids)) === JSON.stringify(first);
      },
      20_000,
      'a still snapshot',
    );
  }

  async function issueToken(tenantId: string, issuer: string, scope: string): Promise<{ token: string; token_id: string }> {
    const issued = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: issuer,
      body: { subject_pubkey: SAMPLE_PUBKEY, scope, expires_in_seconds: 1800 },
    });
    if (issued.status !== 201) throw new Error(`token issue failed: ${issued.status} ${JSON.stringify(issued.body)}`);
    return issued.body;
  }

  async function spawnRunningVm(token: string): Promise<string> {
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    if (spawned.status !== 202) throw new Error(`spawn failed: ${spawned.status} ${JSON.stringify(spawned.body)}`);
    const vmId: string = spawned.body.vm_id;
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'running', 20_000, `VM ${vmId} running`);
    return vmId;
  }

  beforeAll(async () => {
    stack = await startTestStack();
    const quota = { api_rate_limit_rpm: 10_000 };
    const [a, b, c] = await Promise.all([createTenant(stack, { ...quota, max_vms: 20 }), createTenant(stack, quota), createTenant(stack, quota)]);

    // Tenant A: a running VM, a token of every tenant scope, a spare token (target of token
    // revocation), and two more tenant-admin tokens made unusable: one expired, one revoked.
    const [vmId, read, write, audit, spare, expired, revoked, bRead] = await Promise.all([
      spawnRunningVm(a.token),
      issueToken(a.tenantId, a.token, 'vm:read'),
      issueToken(a.tenantId, a.token, 'vm:write'),
      issueToken(a.tenantId, a.token, 'audit:read'),
      issueToken(a.tenantId, a.token, 'vm:read'),
      issueToken(a.tenantId, stack.adminToken, 'service:tenant-admin'),
      issueToken(a.tenantId, stack.adminToken, 'service:tenant-admin'),
      issueToken(b.tenantId, b.token, 'vm:read'),
    ]);
    await stack.db
      .updateTable('api_tokens')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('token_id', '=', expired.token_id)
      .execute();
    // The platform admin revokes it: A's own admin may revoke only what was issued under it.
    const revocation = await stack.request('DELETE', `/v1/tenants/${a.tenantId}/tokens/${revoked.token_id}`, { token: stack.adminToken });
    expect(revocation.status).toBe(200);

    // Tenant B has VMs of its own.
    await Promise.all([spawnRunningVm(b.token), spawnRunningVm(b.token)]);

    // Tenant C is deleted after issuing its token.
    const deletion = await stack.request('DELETE', `/v1/tenants/${c.tenantId}`, { token: stack.adminToken });
    expect(deletion.status).toBe(200);

    world = {
      A: { tenantId: a.tenantId, adminToken: a.token, readToken: read.token, spareTokenId: spare.token_id, vmId },
      B: { tenantId: b.tenantId, adminToken: b.token },
      C: { tenantId: c.tenantId },
      tokens: {
        unknown_token: generateToken(),
        expired_token: expired.token,
        revoked_token: revoked.token,
        deleted_tenant_token: c.token,
        other_tenant_admin: b.token,
        other_tenant_read_only: bRead.token,
        same_tenant_read_only: read.token,
        same_tenant_writer: write.token,
        same_tenant_auditor: audit.token,
        same_tenant_admin: a.token,
        platform_admin: stack.adminToken,
      },
      tokenIds: {
        other_tenant_admin: b.tokenId,
        other_tenant_read_only: bRead.token_id,
        same_tenant_read_only: read.token_id,
        same_tenant_writer: write.token_id,
        same_tenant_auditor: audit.token_id,
        same_tenant_admin: a.tokenId,
        platform_admin: null,
      },
    };
    await settle();
  });

  afterAll(async () => {
    await stack?.close();
  });

  function authorization(caller: Caller): Record<string, string> {
    if (caller === 'no_token') return {};
    if (caller === 'malformed_token') return { authorization: 'Bearer vmt_abc' };
    return { authorization: `Bearer ${world.tokens[caller]}` };
  }

  /** The tenant whose token the caller holds (null for the platform admin and unusable tokens). */
  function callerTenant(caller: Caller): string | null {
    const tenant = IDENTITY[caller].scope === null ? null : IDENTITY[caller].tenant;
    if (tenant === 'A') return world.A.tenantId;
    if (tenant === 'B') return world.B.tenantId;
    return null;
  }

  /** Resolves the matrix placeholders; `{fresh_*}` ones create a throwaway object on the spot. */
  async function placeholderValue(name: string, created: string[]): Promise<string> {
    switch (name) {
      case '{A}':
        return world.A.tenantId;
      case '{A.vm}':
        return world.A.vmId;
      case '{A.token}':
        return world.A.spareTokenId;
      case '{unused_tenant_id}': {
        const id = uniqueName('t')
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-');
        created.push(id);
        return id;
      }
      case '{fresh_tenant}': {
        const fresh = await createTenant(stack);
        created.push(fresh.tenantId);
        return fresh.tenantId;
      }
      case '{fresh_A_token}':
        return (await issueToken(world.A.tenantId, world.A.adminToken, 'vm:read')).token_id;
      case '{fresh_A_vm}':
        return spawnRunningVm(world.A.adminToken);
      default:
        throw new Error(`unknown placeholder ${name} in authz-matrix.json`);
    }
  }

  async function fill(template: Template | undefined, created: string[]): Promise<Template | undefined> {
    if (typeof template === 'string') return /^\{[A-Za-z_.]+\}$/.test(template) ? placeholderValue(template, created) : template;
    if (Array.isArray(template)) return Promise.all(template.map((item) => fill(item, created) as Promise<Template>));
    if (template && typeof template === 'object') {
      const entries = await Promise.all(Object.entries(template).map(async ([key, value]) => [key, await fill(value, created)] as const));
      return Object.fromEntries(entries) as Template;
    }
    return template;
  }

  interface PreparedRequest {
    url: string;
    params: Record<string, string>;
    body: Template | undefined;
    /** Tenant ids the request names that the fixtures do not cover (a fresh or unused tenant). */
    created: string[];
  }

  async function prepare(row: MatrixRow, params: Record<string, string> | undefined): Promise<PreparedRequest> {
    const created: string[] = [];
    const resolved = ((await fill(params ?? {}, created)) ?? {}) as Record<string, string>;
    const query = ((await fill(row.query ?? {}, created)) ?? {}) as Record<string, string>;
    const body = await fill(row.body, created);
    const pathname = row.path.replace(/:([a-z_]+)/g, (_match, name: string) => {
      const value = resolved[name];
      if (value === undefined) throw new Error(`${routeKey(row)}: no value for :${name}`);
      return encodeURIComponent(value);
    });
    const search = new URLSearchParams(query).toString();
    return { url: search ? `${pathname}?${search}` : pathname, params: resolved, body, created };
  }

  function send(request: PreparedRequest, method: string, caller: Caller): Promise<ApiResponse> {
    return stack.request(method, request.url, { headers: authorization(caller), body: request.body ?? undefined });
  }

  function expectProblem(res: ApiResponse, status: number): void {
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status, code: expect.any(String), title: expect.any(String) });
    expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
    if (status === 401) {
      expect(res.body.code).toBe(res.headers.get('www-authenticate')?.includes('invalid_token') ? 'invalid_token' : 'unauthenticated');
    }
    if (status === 403) expect(res.body.code).toBe('insufficient_scope');
    if (status === 404) expect(['tenant_not_found', 'vm_not_found', 'token_not_found']).toContain(res.body.code);
  }

  /** Every tenant_id in an answer given to a tenant token is that token's own tenant. */
  function tenantIdsIn(value: unknown, found: Set<string> = new Set()): Set<string> {
    if (Array.isArray(value)) value.forEach((item) => tenantIdsIn(item, found));
    else if (value && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        // Only values that are tenant ids: /openapi.json's links name `tenant_id` parameters by runtime expression,
        // and its examples (`example`, `examples`) illustrate operations with a made-up tenant.
        if (key === 'example' || key === 'examples') continue;
        if (key === 'tenant_id' && isTenantId(item)) found.add(item);
        else tenantIdsIn(item, found);
      }
    }
    return found;
  }

  function expectNothingOfA(res: ApiResponse): void {
    // `instance` echoes the caller's own request path; everything else must not name A or its objects.
    const { instance: _instance, request_id: _requestId, ...rest } = (res.body ?? {}) as Record<string, unknown>;
    const text = JSON.stringify(rest);
    expect(text).not.toContain(world.A.tenantId);
    expect(text).not.toContain(world.A.vmId);
    expect(text).not.toContain(world.A.spareTokenId);
  }

  function checkScopedAnswer(cell: Cell, res: ApiResponse): void {
    const own = callerTenant(cell.caller);
    if (own && isSuccess(res.status)) expect([...tenantIdsIn(res.body)].filter((id) => id !== own)).toEqual([]);
    if (IDENTITY[cell.caller].tenant === 'B') expectNothingOfA(res);
  }

  describe('cells that must change nothing (refusals and reads)', () => {
    for (const cell of cells.filter((c) => !c.writes)) {
      test(cellName(cell), async () => {
        const request = await prepare(cell.row, cell.row.params);
        const tenants = [...fixtureTenants(), ...request.created];
        const before = await snapshot(tenants);
        const res = await send(request, cell.row.method, cell.caller);
        expect({ status: res.status, code: res.body?.code }).toEqual({ status: cell.status, code: isSuccess(cell.status) ? undefined : expect.any(String) });
        if (!isSuccess(cell.status)) expectProblem(res, cell.status);
        checkScopedAnswer(cell, res);
        expect(await snapshot(tenants)).toEqual(before);
      });
    }
  });

  describe("another tenant's object answers exactly like a missing one", () => {
    /** The same placeholders, pointing at objects that do not exist. */
    const missing: Record<string, () => string> = {
      '{A}': () =>
        uniqueName('t')
          .toLowerCase()
          .replace(/[^a-z0-9-]/g, '-'),
      '{A.vm}': () => randomUUID(),
      '{A.token}': () => newTokenId(),
    };
    const comparable = (res: ApiResponse) => {
      const { instance: _instance, request_id: _requestId, ...rest } = (res.body ?? {}) as Record<string, unknown>;
      return { status: res.status, content_type: res.headers.get('content-type'), body: rest };
    };
    // Rows that name A's objects; B's own VM spawn (a 2xx write in B) has nothing to compare.
    const probed = matrix.routes.filter(
      (row) => !row.public && JSON.stringify([row.params, row.query]).includes('{A') && !(row.mutates && isSuccess(expected(row, 'other_tenant_admin'))),
    );

    for (const row of probed) {
      test(`when B's admin asks ${routeKey(row)} about A's objects, then the answer equals the one for nonexistent ids`, async () => {
        const forA = await prepare(row, row.params);
        const substitute = (values: Record<string, string> | undefined) =>
          Object.fromEntries(Object.entries(values ?? {}).map(([key, value]) => [key, missing[value]?.() ?? value]));
        const forNothing = await prepare({ ...row, query: substitute(row.query) }, substitute(row.params));
        const before = await snapshot(fixtureTenants());
        const [aObject, noObject] = [await send(forA, row.method, 'other_tenant_admin'), await send(forNothing, row.method, 'other_tenant_admin')];
        expect(comparable(aObject)).toEqual(comparable(noObject));
        if (expected(row, 'other_tenant_admin') === 404) expect(aObject.status).toBe(404);
        expect(await snapshot(fixtureTenants())).toEqual(before);
      });
    }

    test("when B's admin revokes A's token id inside its own tenant, then the answer equals the one for a nonexistent token id", async () => {
      const before = await snapshot(fixtureTenants());
      const aToken = await stack.request('DELETE', `/v1/tenants/${world.B.tenantId}/tokens/${world.A.spareTokenId}`, { token: world.B.adminToken });
      const noToken = await stack.request('DELETE', `/v1/tenants/${world.B.tenantId}/tokens/${newTokenId()}`, { token: world.B.adminToken });
      expect(comparable(aToken)).toEqual(comparable(noToken));
      expect(aToken.body.code).toBe('token_not_found');
      expect(await snapshot(fixtureTenants())).toEqual(before);
    });

    test("when B's admin asks for A's VM while naming A in ?tenant_id=, then the answer equals the one for a nonexistent VM", async () => {
      const aVm = await stack.request('GET', `/v1/vms/${world.A.vmId}?tenant_id=${world.A.tenantId}`, { token: world.B.adminToken });
      const noVm = await stack.request('GET', `/v1/vms/${randomUUID()}?tenant_id=${world.A.tenantId}`, { token: world.B.adminToken });
      expect(comparable(aVm)).toEqual(comparable(noVm));
      expect(aVm.body.code).toBe('vm_not_found');
    });
  });

  describe('malformed Authorization headers', () => {
    const headers = [
      'Basic dXNlcjpwYXNz',
      'Bearer',
      'Bearer ',
      'Bearer vmt_',
      `Bearer ${'x'.repeat(600)}`,
      'Bearer a b',
      'Token vmt_abc',
      'bearer\tvmt_abc',
      `Bearer ${generateToken().slice(0, -1)}0`,
    ];
    test.each(headers)('when the Authorization header is %j, then every protected route answers 401 and nothing changes', async (header) => {
      const requests = await Promise.all(matrix.routes.filter((r) => !r.public).map(async (row) => ({ row, request: await prepare(row, row.params) })));
      const tenants = [...fixtureTenants(), ...requests.flatMap(({ request }) => request.created)];
      const before = await snapshot(tenants);
      for (const { row, request } of requests) {
        const res = await stack.request(row.method, request.url, { headers: { authorization: header }, body: request.body ?? undefined });
        expect({ route: routeKey(row), status: res.status }).toEqual({ route: routeKey(row), status: 401 });
        expectProblem(res, 401);
      }
      expect(await snapshot(tenants)).toEqual(before);
    });
  });

  /** The write an allowed cell asked for is in Postgres, as the caller asked for it. */
  async function expectEffect(cell: Cell, request: PreparedRequest, res: ApiResponse): Promise<void> {
    const db = stack.db;
    const body = (request.body ?? {}) as Record<string, unknown>;
    switch (cell.row.action) {
      case 'tenant.create': {
        const row = await db.selectFrom('tenants').selectAll().where('tenant_id', '=', String(body.tenant_id)).executeTakeFirst();
        expect(row).toMatchObject({
          display_name: body.display_name,
          max_vms: body.max_vms,
          storage_quota_gb: body.storage_quota_gb,
          api_rate_limit_rpm: body.api_rate_limit_rpm,
          deleted_at: null,
        });
        return;
      }
      case 'tenant.update': {
        const row = await db.selectFrom('tenants').selectAll().where('tenant_id', '=', request.params.tenant_id!).executeTakeFirstOrThrow();
        expect(row).toMatchObject(body);
        return;
      }
      case 'tenant.delete': {
        const row = await db.selectFrom('tenants').select('deleted_at').where('tenant_id', '=', request.params.tenant_id!).executeTakeFirstOrThrow();
        expect(row.deleted_at).toBeInstanceOf(Date);
        return;
      }
      case 'token.issue': {
        const row = await db.selectFrom('api_tokens').selectAll().where('token_id', '=', String(res.body.token_id)).executeTakeFirstOrThrow();
        expect(row).toMatchObject({ tenant_id: world.A.tenantId, scope: body.scope, revoked_at: null, parent_token_id: world.tokenIds[cell.caller] ?? null });
        expect(row.token_hash).toBe(hashToken(String(res.body.token)));
        return;
      }
      case 'token.revoke': {
        const row = await db.selectFrom('api_tokens').select('revoked_at').where('token_id', '=', request.params.token_id!).executeTakeFirstOrThrow();
        expect(row.revoked_at).toBeInstanceOf(Date);
        return;
      }
      case 'vm.spawn': {
        const row = await db.selectFrom('vms').selectAll().where('vm_id', '=', String(res.body.vm_id)).executeTakeFirstOrThrow();
        expect(row).toMatchObject({ tenant_id: callerTenant(cell.caller), vcpus: body.vcpus, memory_mb: body.memory_mb, storage_gb: body.storage_gb });
        return;
      }
      case 'vm.destroy': {
        const row = await db.selectFrom('vms').select(['tenant_id', 'status']).where('vm_id', '=', request.params.vm_id!).executeTakeFirstOrThrow();
        expect(row.tenant_id).toBe(world.A.tenantId);
        expect(['destroying', 'destroyed']).toContain(row.status);
        return;
      }
      default:
        throw new Error(`no effect check for the write action ${cell.row.action}`);
    }
  }

  describe('cells that succeed with side effects (fresh target per cell, run last)', () => {
    for (const cell of cells.filter((c) => c.writes)) {
      test(`${cellName(cell)}, and no other tenant changes`, async () => {
        const request = await prepare(cell.row, cell.row.success_params ?? cell.row.params);
        await settle(request.created);
        const tenants = [...fixtureTenants(), ...request.created];
        const before = await snapshot(tenants);
        const res = await send(request, cell.row.method, cell.caller);
        expect({ status: res.status, body: res.body }).toEqual({ status: cell.status, body: expect.anything() });
        checkScopedAnswer(cell, res);
        await settle(request.created);
        const after = await snapshot(tenants);
        // The tenant acted in: the caller's own, or the one the platform admin names (A, or a throwaway).
        const actedIn = new Set([callerTenant(cell.caller), ...Object.values(request.params), ...request.created]);
        const untouched = fixtureTenants().filter((id) => !actedIn.has(id));
        for (const id of untouched) expect({ tenant: id, state: after.tenants[id] }).toEqual({ tenant: id, state: before.tenants[id] });
        await expectEffect(cell, request, res);
      });
    }
  });

  describe('headers that name a tenant or an origin', () => {
    const spoofing = () => ({
      'X-Tenant-Id': world.A.tenantId,
      'X-Forwarded-For': '203.0.113.9',
      Forwarded: 'for=203.0.113.9',
      'X-Real-IP': '203.0.113.9',
    });

    test("when B's admin sends X-Tenant-Id and forwarding headers naming A, then it still reads only B and A's VM stays 404", async () => {
      const headers = { ...spoofing(), authorization: `Bearer ${world.B.adminToken}` };
      const list = await stack.request('GET', '/v1/vms', { headers });
      expect(list.status).toBe(200);
      expect([...tenantIdsIn(list.body)]).toEqual([world.B.tenantId]);
      expect((await stack.request('GET', `/v1/vms/${world.A.vmId}`, { headers })).status).toBe(404);
    });

    test('when a request carries forwarding headers and no proxy is trusted, then its ledger entry records the socket address', async () => {
      expect(stack.config.trustedProxies).toEqual([]);
      const issued = await stack.request('POST', `/v1/tenants/${world.B.tenantId}/tokens`, {
        headers: { ...spoofing(), authorization: `Bearer ${world.B.adminToken}` },
        body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 600 },
      });
      expect(issued.status).toBe(201);
      const entry = await stack.db
        .selectFrom('audit_events')
        .select(['tenant_id', 'source_ip'])
        .where('event_type', '=', 'TOKEN_ISSUED')
        .where('tenant_id', '=', world.B.tenantId)
        .orderBy('seq', 'desc')
        .executeTakeFirstOrThrow();
      expect(entry.tenant_id).toBe(world.B.tenantId);
      expect(entry.source_ip).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    });
  });
});
