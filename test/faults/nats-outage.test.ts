/**
 * NATS stopped for a while in the middle of a burst. The API does not need NATS to admit work (the
 * ledger is the outbox), so it keeps answering 202; the event relay in the worker retries until
 * NATS is back and then publishes everything the ledger gathered meanwhile, each event once.
 *
 * The outage lasts 12 s rather than the 30 s of the issue, to keep the suite's run time down; the
 * relay's behaviour does not depend on the length (it retries every second, forever).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateStack } from '../helpers/private-stack';
import { attemptsBetween, createTenants, startBurst, statusHistogram } from './support/burst';
import { expectConvergence } from './support/convergence';

const OUTAGE_MS = 12_000;

describe('fault: NATS stopped', () => {
  const stack = usePrivateStack({ fleetBootMs: 300 });

  test('when NATS is down mid-burst, then the API keeps answering 202 and every event reaches the stream once after it is back', async () => {
    const tenants = await createTenants(stack, 3, 'no');
    const burst = startBurst(stack, tenants, { spawns: 12, destroyEvery: 3, concurrency: 2, paceMs: 600, keyPrefix: 'no' });
    await burst.whenFinal(6);

    await stack.nats.stop();
    const downFrom = Date.now();
    const ledgerAtStop = await stack.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    await sleep(OUTAGE_MS);
    const ledgerBeforeRestart = await stack.db
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    const downTo = Date.now();
    await stack.nats.start();
    await burst.done;

    // The API answered during the outage, and only with 202.
    const during = attemptsBetween(burst.requests, downFrom, downTo);
    expect(during.length).toBeGreaterThan(5);
    expect(statusHistogram(during)).toEqual({ 202: during.length });
    // The ledger (the outbox) kept growing while NATS was down.
    expect(Number(ledgerBeforeRestart.n)).toBeGreaterThan(Number(ledgerAtStop.n));
    expect(burst.requests.every((r) => r.final === 202)).toBe(true);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
    );
    expect(report.vms).toBe(36);
    expect(report.byStatus.failed ?? 0).toBe(0);
    expect(stack.worker.isRunning()).toBe(true);
  }, 300_000);
});
