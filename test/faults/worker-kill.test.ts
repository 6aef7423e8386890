/**
 * kill -9 of the worker in the middle of a burst: in-flight activities and workflow tasks die with
 * it. After a restart, Temporal retries them on the new worker; the activities are idempotent
 * (keyed by vm_id), so no VM is spawned twice and no ledger step is written twice.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateStack } from '../helpers/private-stack';
import { createTenants, startBurst } from './support/burst';
import { expectConvergence } from './support/convergence';

describe('fault: kill -9 of the worker', () => {
  // Slow boots keep activities in flight when the worker dies.
  const stack = usePrivateStack({ fleetBootMs: 1_500 });

  test('when the worker is killed mid-burst and restarted, then every VM converges once, with no double spawn, orphan or lost event', async () => {
    const tenants = await createTenants(stack, 3, 'wk');
    const burst = startBurst(stack, tenants, { spawns: 10, destroyEvery: 3, concurrency: 3, paceMs: 150, keyPrefix: 'wk' });
    await burst.whenFinal(12);

    // The kill must land on work in flight, or it proves nothing.
    const inFlight = await stack.db.selectFrom('vms').select('vm_id').where('status', 'in', ['provisioning', 'destroying']).execute();
    expect(inFlight.length).toBeGreaterThan(0);
    await stack.worker.kill();
    await sleep(3_000);
    await stack.worker.start();
    await burst.done;

    const spawns = burst.requests.filter((r) => r.kind === 'spawn');
    expect(spawns.every((r) => r.final === 202)).toBe(true);
    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
    );
    expect(report.vms).toBe(30);
    expect(report.byStatus.failed ?? 0).toBe(0);
  }, 240_000);
});
