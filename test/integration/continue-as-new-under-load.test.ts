/**
 * Continue-as-new under steady load: tenants spawning and destroying without pause, their workflows
 * continuing as new every few updates while boots and teardowns complete around them. No request may
 * lose its answer to it: every one ends 202 or 429 (a careful client retries a 503 under its
 * Idempotency-Key), no other 5xx, and 503s stay rare; usage still equals Postgres. (Issue 18 saw
 * 4.8% of spawns answer 503, spread over minutes, when runs continued as new with completions
 * pending; a machine shared with the rest of the suite may still hit the 10 s deadline now and then.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { tenantVmTotals } from '../../src/vms/vm.repository';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const TENANTS = 4;
const LANES_PER_TENANT = 4;
const LOAD_MS = 45_000;

describe('continue-as-new under steady load', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ continueAsNewAfterUpdates: 25, fleetBootMs: 100 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when tenants spawn and destroy without pause and their workflows continue as new every 25 updates, then every request is answered 202 or 429 and usage equals Postgres', async () => {
    const tenants = await Promise.all(Array.from({ length: TENANTS }, () => createTenant(stack, { max_vms: 6 })));
    const statuses: Record<string, number> = {};
    const count = (key: string) => (statuses[key] = (statuses[key] ?? 0) + 1);
    const until = Date.now() + LOAD_MS;
    let keys = 0;
    /** One request under its own Idempotency-Key, retried while it answers 503 or 409 in flight; every answer counted. */
    const send = async (what: string, method: string, path: string, token: string, body?: unknown) => {
      const key = `can-load-${++keys}`;
      for (;;) {
        const answer = await stack.request(method, path, { token, body, headers: { 'Idempotency-Key': key } });
        count(`${what} ${answer.status}${answer.body?.code ? ` ${answer.body.code}` : ''}`);
        if (answer.status !== 503 && !(answer.status === 409 && answer.body?.code === 'idempotency_key_in_flight')) return answer;
        await sleep(200);
      }
    };
    const lane = async (token: string) => {
      while (Date.now() < until) {
        const spawned = await send('spawn', 'POST', '/v1/vms', token, SMALL_VM);
        if (spawned.status !== 202) {
          await sleep(50);
          continue;
        }
        await send('destroy', 'DELETE', `/v1/vms/${spawned.body.vm_id}`, token);
      }
    };
    await Promise.all(tenants.flatMap(({ token }) => Array.from({ length: LANES_PER_TENANT }, () => lane(token))));

    const unexpected = Object.entries(statuses).filter(
      ([key]) => !/^(spawn|destroy) (202|429 quota_exceeded|503 dependency_unavailable|409 idempotency_key_in_flight)$/.test(key),
    );
    // An unexpected answer names the error the API logged for it.
    expect({ unexpected, errors: unexpected.length ? stack.logLines.filter((line) => line.includes('"level":50')).slice(-3) : [] }).toEqual({
      unexpected: [],
      errors: [],
    });
    expect(statuses['spawn 202'] ?? 0).toBeGreaterThan(100);
    const answers = Object.values(statuses).reduce((sum, n) => sum + n, 0);
    const unavailable = (statuses['spawn 503 dependency_unavailable'] ?? 0) + (statuses['destroy 503 dependency_unavailable'] ?? 0);
    expect(unavailable / answers).toBeLessThan(0.01);

    for (const { tenantId } of tenants) {
      const handle = stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId));
      const usage = await eventually(
        async () => {
          const u = await handle.query(usageQuery);
          return u.provisioning === 0 && u.destroying === 0 ? u : undefined;
        },
        30_000,
        'work settled',
      );
      expect(usage.vms).toBe((await tenantVmTotals(stack.db, tenantId)).vms);
      let runs = 0;
      for await (const _ of stack.temporal.workflow.list({ query: `WorkflowId = "${tenantWorkflowId(tenantId)}"` })) runs++;
      // At least one continue-as-new under the load (how many depends on how fast a loaded machine
      // answers, and the visibility listing may lag a run behind).
      expect(runs).toBeGreaterThan(1);
    }
    process.stdout.write(`continue-as-new under load: ${JSON.stringify(statuses)}\n`);
  }, 180_000);
});
