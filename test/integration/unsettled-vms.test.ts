import { randomUUID } from 'node:crypto';
import { recordVmStep } from '../../src/activities/vm-audit';
import { vmIdForIdempotencyKey } from '../../src/ledger/deterministic-ids';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { insertVmForLiveTenant } from '../../src/vms/vm.repository';
import { resendUnsettledVms } from '../../src/workers/resend-unsettled-vms';
import { createLogger } from '../../src/logging/logger';
import { replayLiveRuns } from '../helpers/replay-live';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { configureFleet } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/**
 * Work Postgres holds but the tenant workflow lost: an admission's row committed inside a spawn
 * update that Temporal then lost (a server crash before it accepted the update), and a destroy the
 * same way. A client retry with the same key, or else the worker's housekeeping, sends it again.
 */
describe('VMs Postgres holds but the workflow lost', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const context = { request_id: 'lost-update', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null };
  const usage = (tenantId: string) => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
  /** What the lost admission committed: the row and its ledger entry, and nothing in the workflow. */
  async function lostAdmission(tenantId: string, vmId: string): Promise<void> {
    const at = new Date(Date.now() - 10 * 60_000);
    await stack.db.transaction().execute(async (trx) => {
      await insertVmForLiveTenant(trx, { vm_id: vmId, tenant_id: tenantId, shape: { ...SMALL_VM, name: null }, created_at: at });
      await recordVmStep(trx, { tenant_id: tenantId, vm_id: vmId, event_type: 'VM_SPAWN_REQUESTED', context, at, details: { shape: { ...SMALL_VM, name: null } } });
    });
  }
  const statusOf = async (vmId: string) => (await stack.db.selectFrom('vms').select('status').where('vm_id', '=', vmId).executeTakeFirst())?.status;

  test('when no client retries, then housekeeping adopts the lost VM (counted even at a full quota) and it boots', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 1 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202); // the quota is full
    const lost = randomUUID();
    await lostAdmission(tenantId, lost);
    expect((await usage(tenantId)).vms).toBe(1); // the workflow does not know it

    const resent = await resendUnsettledVms({ db: stack.db, workflows: stack.gateway, log: createLogger({ name: 'test', level: 'silent' }), now: new Date(), olderThanMs: 5 * 60_000 });
    expect(resent).toMatchObject({ spawns: 1, failed: 0 });
    await eventually(async () => (await statusOf(lost)) === 'running', 20_000, 'the adopted VM running');
    expect(await usage(tenantId)).toMatchObject({ vms: 2, provisioning: 0 });
    // A second round finds nothing left to send.
    expect(await resendUnsettledVms({ db: stack.db, workflows: stack.gateway, log: createLogger({ name: 'test', level: 'silent' }), now: new Date(), olderThanMs: 5 * 60_000 })).toEqual({ spawns: 0, destroys: 0, failed: 0 });
    expect(await replayLiveRuns(stack.temporal, tenantWorkflowId(tenantId))).toBe(1);
  });

  test('when the client retries with the same Idempotency-Key, then the API sends the spawn again and the lost VM is adopted and boots', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    const key = `lost-${randomUUID()}`;
    const vmId = vmIdForIdempotencyKey(tenantId, key);
    await lostAdmission(tenantId, vmId);
    const retried = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': key } });
    expect(retried.status).toBe(202);
    expect(retried.body.vm_id).toBe(vmId);
    await eventually(async () => (await statusOf(vmId)) === 'running', 20_000, 'the adopted VM running');
    expect(await usage(tenantId)).toMatchObject({ vms: 2, provisioning: 0 });
  });

  test('when a destroy was recorded but the workflow lost it, then the boot ends in a destroy, not a failure', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    const fleet = (controls: SimControlsPatch) => configureFleet(stack.fleet.url, controls);
    await fleet({ fault: 'http_500' });
    try {
      const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      const vmId = spawned.body.vm_id as string;
      // What a lost destroy update committed: the row moved to destroying, and its ledger entry.
      await stack.db.transaction().execute(async (trx) => {
        await trx.updateTable('vms').set({ status: 'destroying', updated_at: new Date() }).where('vm_id', '=', vmId).execute();
        await recordVmStep(trx, { tenant_id: tenantId, vm_id: vmId, event_type: 'VM_DESTROY_REQUESTED', context, at: new Date() });
      });
      await fleet({ fault: 'none' });
      await eventually(async () => (await statusOf(vmId)) === 'destroyed', 30_000, 'the VM destroyed');
      expect(await usage(tenantId)).toMatchObject({ vms: 0, provisioning: 0, destroying: 0 });
    } finally {
      await fleet({ fault: 'none' });
    }
  });
});
