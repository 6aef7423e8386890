/**
 * Continue-as-new under steady load: tenants spawning and destroying without pause, their workflows
 * continuing as new every few updates while boots and teardowns complete around them. Not one
 * request may lose its answer to it (no 503 at the Temporal deadline, no 5xx), and usage still
 * equals Postgres. (Issue 18 saw 4.8% of spawns answer 503 when a run continued as new with
 * completions pending.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { countVmsHoldingQuota } from '../../src/vms/vm.repository';
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
    const lane = async (token: string) => {
      while (Date.now() < until) {
        const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
        count(`spawn ${spawned.status}${spawned.body?.code ? ` ${spawned.body.code}` : ''}`);
        if (spawned.status !== 202) {
          await sleep(50);
          continue;
        }
        const destroyed = await stack.request('DELETE', `/v1/vms/${spawned.body.vm_id}`, { token });
        count(`destroy ${destroyed.status}${destroyed.body?.code ? ` ${destroyed.body.code}` : ''}`);
      }
    };
    await Promise.all(tenants.flatMap(({ token }) => Array.from({ length: LANES_PER_TENANT }, () => lane(token))));

    const unexpected = Object.entries(statuses).filter(([key]) => !/^(spawn 202|spawn 429 quota_exceeded|destroy 202)$/.test(key));
    expect(unexpected).toEqual([]);
    expect(statuses['spawn 202'] ?? 0).toBeGreaterThan(100);

    for (const { tenantId } of tenants) {
      const handle = stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId));
      const usage = await eventually(async () => {
        const u = await handle.query(usageQuery);
        return u.provisioning === 0 && u.destroying === 0 ? u : undefined;
      }, 30_000, 'work settled');
      expect(usage.vms).toBe(await countVmsHoldingQuota(stack.db, tenantId));
      let runs = 0;
      for await (const _ of stack.temporal.workflow.list({ query: `WorkflowId = "${tenantWorkflowId(tenantId)}"` })) runs++;
      expect(runs).toBeGreaterThan(3);
    }
    process.stdout.write(`continue-as-new under load: ${JSON.stringify(statuses)}\n`);
  }, 180_000);
});
