/**
 * A dependency that hangs rather than dies: SIGSTOP of the Temporal server (the case of issue 8,
 * where `POST /v1/tenants` waited 875 s), then of Postgres (the postmaster and every backend).
 * Connections stay open and nothing answers, so only the API's own deadlines end the wait. Each
 * request must be answered within its deadline (+ slack): 503 problem+json `dependency_unavailable`
 * naming the hung dependency, with Retry-After; reads that need only the other dependencies keep
 * answering; /readyz names it (unready only for Postgres). After SIGCONT the system converges as in every fault test.
 *
 * The deadlines are lowered here (the mechanism is the same at the defaults) to keep the run short.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { vmIdForIdempotencyKey } from '../../src/ledger/deterministic-ids';
import { usePrivateStack, type PrivateStack } from '../helpers/private-stack';
import { call, createTenants, SMALL_VM, startBurst, statusHistogram, unansweredInTime, type ClientRequest, type Tenant } from './support/burst';
import { expectConvergence } from './support/convergence';
import { timed } from './support/timed';

const TEMPORAL_CALL_TIMEOUT_MS = 3_000;
const DATABASE_STATEMENT_TIMEOUT_MS = 2_000;
/** The client side gives up one second after statement_timeout (src/db/database.ts). */
const DATABASE_READ_TIMEOUT_MS = DATABASE_STATEMENT_TIMEOUT_MS + 1_000;
const DATABASE_ACQUIRE_TIMEOUT_MS = 2_000;
const READINESS_TIMEOUT_MS = 2_000;
/** Scheduling slack on a shared 2-core machine; a missing deadline waits for the whole outage or for ever. */
const SLACK_MS = 2_000;
const OUTAGE_MS = 9_000;

const deadlines = {
  TEMPORAL_CALL_TIMEOUT_MS: String(TEMPORAL_CALL_TIMEOUT_MS),
  DATABASE_STATEMENT_TIMEOUT_MS: String(DATABASE_STATEMENT_TIMEOUT_MS),
  DATABASE_ACQUIRE_TIMEOUT_MS: String(DATABASE_ACQUIRE_TIMEOUT_MS),
};

/** Sends a spawn with its key until it is admitted: the client's retry after the outage. */
async function spawnUntilAdmitted(stack: PrivateStack, tenant: Tenant, key: string): Promise<ClientRequest> {
  const request: ClientRequest = {
    kind: 'spawn',
    tenantId: tenant.tenantId,
    key,
    vmId: vmIdForIdempotencyKey(tenant.tenantId, key),
    attempts: [],
    final: null,
  };
  const deadline = Date.now() + 60_000;
  while (request.final !== 202 && Date.now() < deadline) {
    const answer = await call(stack.apiUrl, 'POST', '/v1/vms', { token: tenant.token, body: SMALL_VM, headers: { 'idempotency-key': key } }).catch(() => null);
    if (answer?.status === 202) request.final = 202;
    else await sleep(500);
  }
  return request;
}

function expectDependencyUnavailable(answer: { status: number; headers: Headers; body: any }, dependency: string): void {
  expect(answer.status).toBe(503);
  expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(answer.headers.get('retry-after')).toMatch(/^\d+$/);
  expect(answer.body).toMatchObject({ status: 503, code: 'dependency_unavailable', dependency });
}

describe('fault: a hung dependency (SIGSTOP)', () => {
  const stack = usePrivateStack(
    { fleetBootMs: 300, apiEnv: deadlines, workerEnv: deadlines },
    {
      // A failed test may leave a part frozen; a stopped process cannot be stopped gracefully.
      beforeStop: (started) => {
        started.temporal.resume();
        started.postgres.resume();
      },
    },
  );

  test('when the Temporal server is SIGSTOPped mid-burst, then spawns answer 503 naming temporal within the deadline, reads answer 200, /readyz names temporal, and after SIGCONT spawns work and every VM converges once', async () => {
    const tenants = await createTenants(stack, 2, 'th');
    const burst = startBurst(stack, tenants, { spawns: 8, destroyEvery: 3, concurrency: 2, paceMs: 300, keyPrefix: 'th', attemptTimeoutMs: 60_000 });
    await burst.whenFinal(4);

    stack.temporal.pause();
    await sleep(500);
    const [tenant] = tenants as [Tenant];
    const [spawn, list, read, ready, created] = await Promise.all([
      timed(() =>
        call(stack.apiUrl, 'POST', '/v1/vms', { token: tenant.token, body: SMALL_VM, headers: { 'idempotency-key': 'th-probe' }, timeoutMs: 60_000 }),
      ),
      timed(() => call(stack.apiUrl, 'GET', '/v1/vms', { token: tenant.token })),
      timed(() => call(stack.apiUrl, 'GET', `/v1/tenants/${tenant.tenantId}`, { token: tenant.token })),
      timed(() => call(stack.apiUrl, 'GET', '/readyz')),
      // Tenant creation does not need Temporal: the tenant is in Postgres; its workflow starts on first use.
      timed(() =>
        call(stack.apiUrl, 'POST', '/v1/tenants', {
          token: stack.adminToken,
          body: { tenant_id: 'th-created-while-hung', display_name: 'Created while Temporal hung', max_vms: 5, storage_quota_gb: 50, api_rate_limit_rpm: 600 },
          timeoutMs: 60_000,
        }),
      ),
    ]);
    await sleep(OUTAGE_MS - 500 - Math.max(spawn.ms, created.ms));
    stack.temporal.resume();
    // The probe's request may have been admitted when Temporal woke up: the retry with its key converges.
    const probe = await spawnUntilAdmitted(stack, tenant, 'th-probe');
    await burst.done;

    expectDependencyUnavailable(spawn, 'temporal');
    expect(spawn.body.detail).toMatch(/may have been admitted.*Idempotency-Key/);
    expect(spawn.ms).toBeLessThan(TEMPORAL_CALL_TIMEOUT_MS + SLACK_MS);
    expect([list.status, read.status]).toEqual([200, 200]);
    expect(Math.max(list.ms, read.ms)).toBeLessThan(SLACK_MS);
    // Temporal is reported, not a reason to be unready (every replica would go out at once; issue 22).
    expect(ready.status).toBe(200);
    expect(ready.ms).toBeLessThan(READINESS_TIMEOUT_MS + SLACK_MS);
    expect(ready.body.dependencies).toMatchObject({ temporal: { ok: false }, postgres: { ok: true }, nats: { ok: true } });
    expect(probe.final).toBe(202);
    expect(created.status).toBe(201);
    expect(created.ms).toBeLessThan(TEMPORAL_CALL_TIMEOUT_MS + SLACK_MS);

    // Every attempt of the burst was answered within the Temporal deadline (+ slack), none with a 500.
    const attempts = burst.requests.flatMap((r) => r.attempts);
    expect(unansweredInTime(burst.requests, TEMPORAL_CALL_TIMEOUT_MS + SLACK_MS)).toEqual([]);
    expect(attempts.filter((a) => a.status === 500)).toEqual([]);
    expect(attempts.filter((a) => a.status === 503).every((a) => a.code === 'dependency_unavailable')).toBe(true);
    expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, final: r.final, answers: statusHistogram(r.attempts) }))).toEqual([]);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      [...burst.requests, probe],
    );
    expect(report.vms).toBe(17);
    expect(report.byStatus.failed ?? 0).toBe(0);
    expect(stack.api.isRunning()).toBe(true);
    expect(stack.worker.isRunning()).toBe(true);
  }, 240_000);

  test('when Postgres is SIGSTOPped mid-burst, then requests answer 503 naming postgres within the deadline instead of hanging, and after SIGCONT every VM converges once', async () => {
    const tenants = await createTenants(stack, 2, 'ph');
    const burst = startBurst(stack, tenants, { spawns: 8, destroyEvery: 3, concurrency: 2, paceMs: 300, keyPrefix: 'ph', attemptTimeoutMs: 60_000 });
    await burst.whenFinal(4);

    stack.postgres.pause();
    await sleep(500);
    const [tenant] = tenants as [Tenant];
    const probes = await Promise.all([
      timed(() =>
        call(stack.apiUrl, 'POST', '/v1/vms', { token: tenant.token, body: SMALL_VM, headers: { 'idempotency-key': 'ph-probe' }, timeoutMs: 60_000 }),
      ),
      timed(() => call(stack.apiUrl, 'GET', '/v1/vms', { token: tenant.token, timeoutMs: 60_000 })),
      timed(() => call(stack.apiUrl, 'GET', '/v1/tenants', { token: stack.adminToken, timeoutMs: 60_000 })),
    ]);
    const ready = await timed(() => call(stack.apiUrl, 'GET', '/readyz', { timeoutMs: 60_000 }));
    await sleep(Math.max(0, OUTAGE_MS - 500 - Math.max(...probes.map((p) => p.ms)) - ready.ms));
    stack.postgres.resume();
    await burst.done;

    // A request that starts during the outage fails on its first query: acquire or read timeout.
    const firstQueryBound = Math.max(DATABASE_READ_TIMEOUT_MS, DATABASE_ACQUIRE_TIMEOUT_MS);
    for (const probe of probes) {
      expectDependencyUnavailable(probe, 'postgres');
      expect(probe.ms).toBeLessThan(firstQueryBound + SLACK_MS);
    }
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThan(READINESS_TIMEOUT_MS + SLACK_MS);
    expect(ready.body.dependencies).toMatchObject({ postgres: { ok: false }, temporal: { ok: true }, nats: { ok: true } });

    // A request caught mid-way meets at most two bounded queries (the one that times out, and
    // releasing its Idempotency-Key) after its Temporal call.
    const attempts = burst.requests.flatMap((r) => r.attempts);
    expect(unansweredInTime(burst.requests, 2 * firstQueryBound + SLACK_MS)).toEqual([]);
    expect(attempts.filter((a) => a.status === 500)).toEqual([]);
    expect(attempts.filter((a) => a.status === 503).every((a) => a.code === 'dependency_unavailable')).toBe(true);
    expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, final: r.final, answers: statusHistogram(r.attempts) }))).toEqual([]);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
    );
    expect(report.vms).toBe(16);
    expect(report.byStatus.failed ?? 0).toBe(0);
    expect(stack.api.isRunning()).toBe(true);
    expect(stack.worker.isRunning()).toBe(true);
  }, 240_000);
});
