/**
 * kill -9 of the API process in the middle of a burst: requests die half-way (after the workflow
 * accepted a spawn but before Postgres recorded it, or before the answer was sent). Clients retry
 * with their Idempotency-Key against a restarted API and get an answer for the same VM; the VM id
 * is derived from the key, and the activity records whatever step the dead request did not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateStack } from '../helpers/private-stack';
import { createTenants, startBurst } from './support/burst';
import { expectConvergence } from './support/convergence';

describe('fault: kill -9 of the API', () => {
  const stack = usePrivateStack({ fleetBootMs: 300 });

  test('when the API is killed mid-burst, then clients retrying with their Idempotency-Key get one VM each and everything converges', async () => {
    const tenants = await createTenants(stack, 3, 'ak');
    // Retries run past the 60 s lease of an Idempotency-Key whose request died with the process.
    const burst = startBurst(stack, tenants, { spawns: 10, destroyEvery: 3, concurrency: 4, paceMs: 100, keyPrefix: 'ak', retryForMs: 150_000 });
    await burst.whenFinal(10);
    const killedAt = Date.now();
    await stack.api.kill();
    await sleep(2_000);
    await stack.api.start();
    await burst.done;

    // The kill cut requests off, and their retries got a final answer from the new process.
    const cut = burst.requests.filter((r) => r.attempts.some((a) => a.status === 'network' && a.at >= killedAt));
    expect(cut.length).toBeGreaterThan(0);
    expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, final: r.final, attempts: r.attempts.slice(-3) }))).toEqual([]);
    // No attempt ever got a 5xx: a dead API is a connection error, a live one answers.
    expect(burst.requests.flatMap((r) => r.attempts).filter((a) => typeof a.status === 'number' && a.status >= 500)).toEqual([]);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
    );
    expect(report.vms).toBe(30);
    expect(report.byStatus.failed ?? 0).toBe(0);
  }, 300_000);
});
