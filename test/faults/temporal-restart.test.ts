/**
 * Restart of the Temporal dev server on the same database file in the middle of a burst. The
 * workflows, their pending activities and timers live in that file, so they resume where they
 * were; the API and the worker reconnect on their own. Requests that reached the API while the
 * server was down are retried by the client with the same Idempotency-Key.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateStack } from '../helpers/private-stack';
import { createTenants, startBurst, statusHistogram } from './support/burst';
import { expectConvergence } from './support/convergence';

describe('fault: restart of the Temporal server', () => {
  const stack = usePrivateStack({ fleetBootMs: 1_000 });

  test('when Temporal restarts on the same database file mid-burst, then workflows resume and every VM converges once', async () => {
    const tenants = await createTenants(stack, 3, 'tr');
    const burst = startBurst(stack, tenants, { spawns: 10, destroyEvery: 3, concurrency: 3, paceMs: 150, keyPrefix: 'tr' });
    await burst.whenFinal(12);
    const inFlight = await stack.db.selectFrom('vms').select('vm_id').where('status', 'in', ['provisioning', 'destroying']).execute();
    expect(inFlight.length).toBeGreaterThan(0);

    await stack.temporal.stop();
    await sleep(3_000);
    await stack.temporal.start();
    await burst.done;

    const attempts = burst.requests.flatMap((r) => r.attempts);
    expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, final: r.final, answers: statusHistogram(r.attempts) }))).toEqual([]);
    // While Temporal is down the API answers 503 problem+json, never a bare 500.
    expect(attempts.filter((a) => a.status === 500)).toEqual([]);
    expect(attempts.filter((a) => a.status === 503).every((a) => a.contentType?.startsWith('application/problem+json'))).toBe(true);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
    );
    expect(report.vms).toBe(30);
    expect(report.byStatus.failed ?? 0).toBe(0);
    // Both processes survived the outage: they reconnected rather than crashed.
    expect(stack.api.isRunning()).toBe(true);
    expect(stack.worker.isRunning()).toBe(true);
  }, 300_000);
});
