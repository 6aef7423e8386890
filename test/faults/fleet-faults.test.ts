/**
 * The fleet controller failing in the middle of a burst: first answering 500 to every call, then
 * not answering at all (the client times out), then healthy again. Fleet work runs in activities
 * that retry with backoff until the fleet answers; a spawn is keyed by vm_id at the fleet, so a
 * retry after a lost answer finds the VM instead of creating a second one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { configureFleet, fleetStats } from '../../src/fleet-simulator/sim-client';
import { usePrivateStack, type PrivateStack } from '../helpers/private-stack';
import { createTenants, startBurst, statusHistogram } from './support/burst';
import { expectConvergence } from './support/convergence';

const setFault = (stack: PrivateStack, fault: 'none' | 'http_500' | 'timeout') => configureFleet(stack.fleetUrl, { fault });

describe('fault: fleet answering 500s, then timing out', () => {
  // The fleet client's per-call timeout is 10 s (src/workers/build-worker.ts).
  const stack = usePrivateStack({ fleetBootMs: 300 });

  test('when the fleet fails for a while mid-burst, then the API keeps admitting and every VM converges once, with no duplicate', async () => {
    const tenants = await createTenants(stack, 3, 'ff');
    const burst = startBurst(stack, tenants, { spawns: 10, destroyEvery: 3, concurrency: 2, paceMs: 400, keyPrefix: 'ff' });
    await burst.whenFinal(6);

    await setFault(stack, 'http_500');
    await sleep(8_000);
    const duringErrors = await stack.db.selectFrom('vms').select('vm_id').where('status', 'in', ['provisioning', 'destroying']).execute();
    await setFault(stack, 'timeout');
    await sleep(12_000);
    await setFault(stack, 'none');
    await burst.done;

    // Fleet trouble is the worker's business: the API admitted every request.
    expect(statusHistogram(burst.requests.flatMap((r) => r.attempts))).toEqual({ 202: burst.requests.length });
    // The fault held VMs back (they waited, they did not fail).
    expect(duringErrors.length).toBeGreaterThan(0);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
      120_000,
    );
    expect(report.vms).toBe(30);
    expect(report.byStatus.failed ?? 0).toBe(0);
    // Spawn calls were retried through the fault, yet each VM was created once: every VM that ran
    // was created once; a VM destroyed while the fault held its boot was never created at all.
    const stats = await fleetStats(stack.fleetUrl);
    const ran = await stack.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.count<string>('vm_id').distinct().as('n'))
      .where('event_type', '=', 'VM_RUNNING')
      .where(
        'tenant_id',
        'in',
        tenants.map((t) => t.tenantId),
      )
      .executeTakeFirstOrThrow();
    expect(stats.creates).toBeGreaterThanOrEqual(Number(ran.n));
    expect(stats.creates).toBeLessThanOrEqual(30);
    expect(report.byStatus.running).toBeLessThanOrEqual(stats.creates);
  }, 300_000);
});
