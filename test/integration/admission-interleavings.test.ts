/**
 * The interleavings issue 18 found by reading the previous protocol, each shown not to happen now
 * (docs/admission-protocol.md): a retried spawn across continue-as-new is answered from its one
 * decision; a VM carried across runs is really destroyed by its destroy; a hung boot times out at
 * its admission's deadline however often the workflow continues as new; a destroy that overtakes a
 * slow fleet create stops the boot at once and leaves nothing at the fleet.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { configureFleet, fleetVm, fleetVms } from '../../src/fleet-simulator/sim-client';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const BOOT_TIMEOUT_MS = 4000;

describe('admission interleavings', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ continueAsNewAfterUpdates: 3, limits: { boot_timeout_ms: BOOT_TIMEOUT_MS } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const handle = (tenantId: string) => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId));
  const statusOf = async (vmId: string) =>
    (await stack.db.selectFrom('vms').select(['status', 'failure_reason']).where('vm_id', '=', vmId).executeTakeFirst()) ?? null;
  const context = { request_id: 'interleaving', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null };
  let quotaVersion = 100;
  /** One update to the tenant's workflow, to push it through continue-as-new (every 3 updates here). */
  const nudge = (tenantId: string, maxVms: number) =>
    stack.gateway.changeQuota(tenantId, { max_vms: maxVms, storage_quota_gb: 1000, version: ++quotaVersion }, context);

  test('when a spawn is retried with its key after the workflow continued as new, then it is answered from its one decision and the quota counts it once', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 2 });
    const first = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': 'retry-across-can' } });
    expect(first.status).toBe(202);
    const runBefore = (await handle(tenantId).describe()).runId;
    for (let i = 0; i < 4; i++) await nudge(tenantId, 2);
    await eventually(async () => (await handle(tenantId).describe()).runId !== runBefore, 20_000, 'continue-as-new');
    // The stored answer is forgotten, as after its 24 h: the retry reaches the workflow again.
    await stack.db.deleteFrom('idempotency_keys').where('tenant_id', '=', tenantId).execute();
    const retry = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': 'retry-across-can' } });
    expect(retry.status).toBe(202);
    expect(retry.body.vm_id).toBe(first.body.vm_id);
    const other = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(other.status).toBe(202);
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(429);
    await eventually(async () => ((await handle(tenantId).query(usageQuery)).provisioning === 0 ? true : undefined), 20_000, 'boots done');
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ vms: 2 });
  });

  test('when a running VM was carried through continue-as-new and a rebuild, then its destroy really destroys it and frees its quota', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 1 });
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    const vmId = spawned.body.vm_id as string;
    await eventually(async () => ((await statusOf(vmId))?.status === 'running' ? true : undefined), 20_000, 'running');
    for (let i = 0; i < 4; i++) await nudge(tenantId, 1);
    await handle(tenantId).terminate('test: lose the workflow');
    const destroyed = await stack.request('DELETE', `/v1/vms/${vmId}`, { token });
    expect(destroyed.status).toBe(202);
    await eventually(async () => ((await statusOf(vmId))?.status === 'destroyed' ? true : undefined), 20_000, 'destroyed');
    expect((await fleetVm(stack.fleet.url, vmId))?.status).toBe('destroyed');
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ vms: 0 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
  });

  test('when a boot hangs while the workflow keeps continuing as new, then the VM still fails at its admission deadline', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 3 });
    await configureFleet(stack.fleet.url, { boot_ms: 600_000 });
    try {
      const admittedAt = Date.now();
      const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      const vmId = spawned.body.vm_id as string;
      // Continue as new every second or so, for longer than the deadline: each run resumes the boot.
      let failedAt: number | null = null;
      while (failedAt === null && Date.now() - admittedAt < BOOT_TIMEOUT_MS + 12_000) {
        await nudge(tenantId, 3);
        if ((await statusOf(vmId))?.status === 'failed') failedAt = Date.now();
        await sleep(300);
      }
      expect(failedAt).not.toBeNull();
      expect(await statusOf(vmId)).toEqual({ status: 'failed', failure_reason: 'boot_timeout' });
      // The deadline ran from admission, not from the last run's start (a retry backoff may add a few seconds).
      expect(failedAt! - admittedAt).toBeLessThan(BOOT_TIMEOUT_MS + 8_000);
    } finally {
      await configureFleet(stack.fleet.url, { boot_ms: 50 });
    }
  });

  test('when a destroy overtakes a fleet create that is slower than the fleet call deadline, then the destroy does not wait for the create and the late create leaves no VM at the fleet', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 3 });
    // The create is held at the fleet longer than the client's 10 s per call; everything after it is fast.
    await configureFleet(stack.fleet.url, { latency_ms: 11_000 });
    let vmId: string;
    try {
      const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      expect(spawned.status).toBe(202);
      vmId = spawned.body.vm_id as string;
      await sleep(1500); // the boot's create is now held at the fleet
    } finally {
      await configureFleet(stack.fleet.url, { latency_ms: 0 });
    }
    const destroyAt = Date.now();
    expect((await stack.request('DELETE', `/v1/vms/${vmId}`, { token })).status).toBe(202);
    await eventually(async () => ((await statusOf(vmId))?.status === 'destroyed' ? true : undefined), 20_000, 'destroyed');
    // The boot is cancelled while its fleet call is in flight: the destroy does not wait for that call's deadline.
    expect(Date.now() - destroyAt).toBeLessThan(5_000);
    // Past the held create's release: the fleet refused it (tombstone), so it holds nothing for the tenant.
    await sleep(11_000 - (Date.now() - destroyAt) + 1500);
    expect((await fleetVms(stack.fleet.url, tenantId)).filter((vm) => vm.status !== 'destroyed')).toEqual([]);
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ vms: 0, provisioning: 0, destroying: 0 });
  }, 60_000);
});
