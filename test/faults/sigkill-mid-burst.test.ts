/**
 * SIGKILL (no shutdown code runs, connections are cut mid-stream) of each dependency in turn, in
 * the middle of a burst, then a restart on the same data: the fleet simulator, NATS, Postgres and
 * the Temporal server. One private stack serves the four, each with its own tenants and burst.
 *
 * Every attempt must be answered within its deadline (the Temporal call deadline, default 10 s,
 * plus slack): no hang, no 500, only 202, 503 dependency_unavailable or 409 while a key's lease
 * runs (the Postgres kill; this is why that case takes about a minute). Then the system converges
 * as in every fault test: no double spawn, no orphan, usage = VMs, ledger and NATS exactly once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { usePrivateStack, type StackPart } from '../helpers/private-stack';
import { createTenants, startBurst, statusHistogram, unansweredInTime } from './support/burst';
import { expectConvergence } from './support/convergence';

/** TEMPORAL_CALL_TIMEOUT_MS at its default: the longest a request may wait on a dependency. */
const REQUEST_DEADLINE_MS = 10_000;
const SLACK_MS = 3_000;
const SPAWNS_PER_TENANT = 8;

describe('fault: SIGKILL of a dependency mid-burst, then restart', () => {
  const stack = usePrivateStack({ fleetBootMs: 300 });

  async function killMidBurst(part: () => StackPart, prefix: string, downMs: number): Promise<void> {
    const tenants = await createTenants(stack, 2, prefix);
    const burst = startBurst(stack, tenants, {
      spawns: SPAWNS_PER_TENANT,
      destroyEvery: 3,
      concurrency: 2,
      paceMs: 250,
      keyPrefix: prefix,
      attemptTimeoutMs: 60_000,
    });
    await burst.whenFinal(4);
    await part().kill();
    await sleep(downMs);
    await part().start();
    await burst.done;

    const attempts = burst.requests.flatMap((r) => r.attempts);
    expect(unansweredInTime(burst.requests, REQUEST_DEADLINE_MS + SLACK_MS)).toEqual([]);
    // 409 idempotency_key_in_flight: a key whose request died with its Postgres connection, and whose
    // release could not reach Postgres either, is held until its lease runs out (docs/reliability.md).
    const allowed = (a: (typeof attempts)[number]) =>
      a.status === 202 || (a.status === 503 && a.code === 'dependency_unavailable') || (a.status === 409 && a.code === 'idempotency_key_in_flight');
    expect(attempts.filter((a) => !allowed(a))).toEqual([]);
    expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, final: r.final, answers: statusHistogram(r.attempts) }))).toEqual([]);

    const report = await expectConvergence(
      stack,
      tenants.map((t) => t.tenantId),
      burst.requests,
    );
    expect(report.vms).toBe(2 * SPAWNS_PER_TENANT);
    const failed = await stack.db
      .selectFrom('vms')
      .select(['vm_id', 'failure_reason'])
      .where('status', '=', 'failed')
      .where(
        'tenant_id',
        'in',
        tenants.map((t) => t.tenantId),
      )
      .execute();
    expect(failed).toEqual([]);
    expect(report.byStatus.failed ?? 0).toBe(0);
    expect(stack.api.isRunning()).toBe(true);
    expect(stack.worker.isRunning()).toBe(true);
  }

  test('when the fleet simulator is SIGKILLed mid-burst and restarted, then every request is answered in time and every VM converges once', async () => {
    await killMidBurst(() => stack.fleet, 'kf', 3_000);
  }, 240_000);

  test('when NATS is SIGKILLed mid-burst and restarted, then every request is answered in time and every event reaches the stream once', async () => {
    await killMidBurst(() => stack.nats, 'kn', 3_000);
  }, 240_000);

  test('when Postgres is SIGKILLed mid-burst and restarted, then every request is answered in time (503 while it is down) and every VM converges once', async () => {
    await killMidBurst(() => stack.postgres, 'kp', 3_000);
  }, 240_000);

  test('when the Temporal server is SIGKILLed mid-burst and restarted on its database file, then every request is answered in time and every VM converges once', async () => {
    // Down longer than the deadline: the SDK's own gRPC retries (about 20 s in all) would otherwise
    // absorb the outage, and the test could not tell a deadline from none.
    await killMidBurst(() => stack.temporal, 'kt', REQUEST_DEADLINE_MS + 2_000);
  }, 240_000);
});
