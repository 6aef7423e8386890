/**
 * Postgres stopped for a while in the middle of a burst. Everything the API does starts with
 * Postgres (the token lookup, the rate limit, the idempotency key), so while it is down the API
 * answers 503 problem+json `dependency_unavailable` with Retry-After — never a 500, and never a
 * half-done request: a spawn either was recorded in full or is retried by the client with the same
 * Idempotency-Key. The worker's activities and the event relay retry until it is back.
 *
 * The outage lasts 12 s rather than the 30 s of the issue, to keep the suite's run time down.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateStack } from '../helpers/private-stack';
import { attemptsBetween, call, createTenants, startBurst, statusHistogram } from './support/burst';
import { expectConvergence } from './support/convergence';

const OUTAGE_MS = 12_000;

describe('fault: Postgres stopped', () => {
  const stack = usePrivateStack({ fleetBootMs: 300 });

  test('when Postgres is down mid-burst, then the API answers 503 problem+json with Retry-After, and after it is back every VM converges once', async () => {
    const tenants = await createTenants(stack, 3, 'po');
    const burst = startBurst(stack, tenants, { spawns: 12, destroyEvery: 3, concurrency: 2, paceMs: 500, keyPrefix: 'po', retryForMs: 150_000 });
    await burst.whenFinal(6);

    await stack.postgres.stop();
    const downFrom = Date.now();
    await sleep(2_000);
    // A read, a spawn and an admin call each get the same answer.
    const probes = await Promise.all([
      call(stack.apiUrl, 'GET', '/v1/vms', { token: tenants[0]!.token }),
      call(stack.apiUrl, 'POST', '/v1/vms', {
        token: tenants[0]!.token,
        body: { vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12' },
        headers: { 'idempotency-key': 'po-probe' },
      }),
      call(stack.apiUrl, 'GET', '/v1/tenants', { token: stack.adminToken }),
    ]);
    const [health, ready] = await Promise.all([call(stack.apiUrl, 'GET', '/healthz'), call(stack.apiUrl, 'GET', '/readyz')]);
    await sleep(OUTAGE_MS - 2_000);
    const downTo = Date.now();
    await stack.postgres.start();
    await burst.done;

    for (const probe of probes) {
      expect(probe.status).toBe(503);
      expect(probe.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(probe.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(probe.body).toMatchObject({ status: 503, code: 'dependency_unavailable' });
    }
    // Alive, not ready, and it says why.
    expect(health.status).toBe(200);
    expect(ready.status).toBe(503);
    expect(ready.body.dependencies.postgres.ok).toBe(false);
    expect(ready.body.dependencies.nats.ok).toBe(true);
    const during = attemptsBetween(burst.requests, downFrom + 1_000, downTo);
    expect(during.length).toBeGreaterThan(0);
    expect(Object.keys(statusHistogram(during))).toEqual(['503 dependency_unavailable']);
    expect(burst.requests.flatMap((r) => r.attempts).filter((a) => a.status === 500)).toEqual([]);
    expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, final: r.final, answers: statusHistogram(r.attempts) }))).toEqual([]);

    // The probe spawn was refused before anything was written: no VM, no key left claimed.
    const probeKey = await stack.db.selectFrom('idempotency_keys').selectAll().where('idempotency_key', '=', 'po-probe').execute();
    expect(probeKey).toEqual([]);

    const tenantIds = tenants.map((t) => t.tenantId);
    const report = await expectConvergence(stack, tenantIds, burst.requests);
    expect(report.vms).toBe(36);
    expect(report.byStatus.failed ?? 0).toBe(0);
    expect(stack.api.isRunning()).toBe(true);
    expect(stack.worker.isRunning()).toBe(true);
  }, 300_000);
});
