import { sql } from 'kysely';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { replayLiveRuns } from '../helpers/replay-live';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';
import { largestPayload } from '../../src/temporal/largest-payload';

const MAX_VMS = 100_000; // the largest max_vms the API accepts
const SEEDED = MAX_VMS - 10;
const PAYLOAD_LIMIT = 256 * 1024;

/**
 * A tenant at the largest size the API accepts: its workflow state and every payload stay small,
 * and its usage matches Postgres through spawns, destroys, continue-as-new and rebuilds.
 */
describe('a tenant holding 100,000 VMs', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ continueAsNewAfterUpdates: 3 });
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when its workflow is lost, rebuilt, continued as new and rebuilt again, then usage equals Postgres at every step and no payload exceeds 256 KiB', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: MAX_VMS, storage_quota_gb: 1_000_000 });
    const handle = () => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId));
    // Seeded straight into Postgres, as if spawned long ago: the workflow never heard of them one by one.
    await sql`
      insert into vms (vm_id, tenant_id, name, vcpus, memory_mb, storage_gb, image, status, created_at, updated_at)
      select gen_random_uuid()::text, ${tenantId}, null, 1, 512, 5, 'debian-12', 'running', now() - interval '1 day', now() - interval '1 day'
      from generate_series(1, ${SEEDED})`.execute(stack.db);
    const seeded = await stack.db.selectFrom('vms').select('vm_id').where('tenant_id', '=', tenantId).orderBy('vm_id').limit(3).execute();

    // Counted here on its own, not with the repository function the workflow's rebuild uses: the
    // rows holding quota (docs/admission-protocol.md), not the requested or rejected ones.
    const heldInPostgres = async () => {
      const { rows } = await sql<{ vms: string; storage_gb: string }>`
        select count(*) as vms, coalesce(sum(storage_gb), 0) as storage_gb from vms
        where tenant_id = ${tenantId} and status in ('provisioning', 'running', 'destroying')`.execute(stack.db);
      return { vms: Number(rows[0]!.vms), storage_gb: Number(rows[0]!.storage_gb) };
    };
    const lose = async () => {
      await eventually(
        async () =>
          (
            await handle()
              .describe()
              .catch(() => null)
          )?.status.name === 'RUNNING',
        20_000,
        'a running workflow',
      );
      await handle().terminate('test: the workflow is lost');
    };
    const expectUsageEqualsPostgres = async (what: string) => {
      const usage = await eventually(
        async () => {
          const u = await handle().query(usageQuery);
          return u.provisioning === 0 && u.destroying === 0 ? u : undefined;
        },
        30_000,
        `${what}: settled`,
      );
      expect({ step: what, vms: usage.vms, storage_gb: usage.storage_gb }).toEqual({ step: what, ...(await heldInPostgres()) });
      return usage;
    };
    const spawnRunning = async () => {
      const res = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      expect(res.status).toBe(202);
      await eventually(async () => (await stack.request('GET', `/v1/vms/${res.body.vm_id}`, { token })).body.status === 'running', 30_000, 'VM running');
      return res.body.vm_id as string;
    };
    const destroyGone = async (vmId: string) => {
      expect((await stack.request('DELETE', `/v1/vms/${vmId}`, { token })).status).toBe(202);
      await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'destroyed', 30_000, 'VM destroyed');
    };

    await lose();
    const rebuiltAt = Date.now();
    await spawnRunning(); // rebuilds from Postgres: totals as one aggregate, nothing listed
    const rebuildMs = Date.now() - rebuiltAt;
    expect((await expectUsageEqualsPostgres('after the rebuild')).vms).toBe(SEEDED + 1);

    await destroyGone(seeded[0]!.vm_id); // a VM the workflow knows only as part of its totals
    await expectUsageEqualsPostgres('after destroying a seeded VM');

    // Up to the quota exactly, then one over.
    while ((await heldInPostgres()).vms < MAX_VMS) await spawnRunning();
    const over = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(over.status).toBe(429);
    expect(over.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: MAX_VMS, in_use: MAX_VMS, requested: 1 });
    // The refused request has its row, rejected: recorded, never counted.
    const refused = await stack.db
      .selectFrom('vms')
      .select(['status', 'failure_reason'])
      .where('tenant_id', '=', tenantId)
      .where('status', 'not in', ['running', 'destroyed'])
      .execute();
    expect(refused).toEqual([{ status: 'rejected', failure_reason: 'quota_exceeded' }]);
    await expectUsageEqualsPostgres('at the quota');

    await destroyGone(seeded[1]!.vm_id);
    await lose();
    await spawnRunning();
    await destroyGone(seeded[2]!.vm_id);
    const final = await expectUsageEqualsPostgres('after the second rebuild');
    expect(final.vms).toBe(MAX_VMS - 1);

    const runs: string[] = [];
    for await (const execution of stack.temporal.workflow.list({ query: `WorkflowId="${tenantWorkflowId(tenantId)}"` })) runs.push(execution.runId);
    expect(runs.length).toBeGreaterThanOrEqual(4); // two rebuilds and continue-as-new in between
    let largest = 0;
    for (const runId of runs) {
      const history = await stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId), runId).fetchHistory();
      for (const event of history.events ?? []) largest = Math.max(largest, largestPayload(event));
    }
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(PAYLOAD_LIMIT);
    expect(await replayLiveRuns(stack.temporal, tenantWorkflowId(tenantId))).toBe(runs.length);
    process.stdout.write(`large tenant: rebuild + first spawn ${rebuildMs} ms, largest payload ${largest} bytes over ${runs.length} runs\n`);
  }, 180_000);
});
