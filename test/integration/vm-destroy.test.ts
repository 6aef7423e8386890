import { randomUUID } from 'node:crypto';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { replayLiveRuns } from '../helpers/replay-live';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { configureFleet, fleetStats as fleetStatsAt, fleetTenantStats, fleetVm as fleetVmAt } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/** Destroy semantics, tenant isolation of VM ids, and the VM list. */
describe('VM destroy, isolation and listing', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const spawn = (token: string, body: object = SMALL_VM) => stack.request('POST', '/v1/vms', { token, body });
  const getVm = (token: string, vmId: string) => stack.request('GET', `/v1/vms/${vmId}`, { token });
  const destroy = (token: string, vmId: string) => stack.request('DELETE', `/v1/vms/${vmId}`, { token });
  const statusOf = async (token: string, vmId: string) => (await getVm(token, vmId)).body.status as string;

  const fleetVm = (vmId: string) => fleetVmAt(stack.fleet.url, vmId);
  const fleetDestroys = async () => (await fleetStatsAt(stack.fleet.url)).destroys;
  const fleetStats = (tenantId: string) => fleetTenantStats(stack.fleet.url, tenantId);
  const setFleet = (controls: SimControlsPatch) => configureFleet(stack.fleet.url, controls);

  async function spawnRunning(token: string, body: object = SMALL_VM): Promise<string> {
    const spawned = await spawn(token, body);
    expect(spawned.status).toBe(202);
    const vmId = spawned.body.vm_id as string;
    await eventually(async () => (await statusOf(token, vmId)) === 'running', 20_000, `VM ${vmId} running`);
    return vmId;
  }

  /** The problem body without the members that name this request (instance, request_id). */
  const problemShape = (body: Record<string, unknown>) => {
    const { instance: _instance, request_id: _requestId, ...rest } = body;
    return rest;
  };

  test('when a destroy arrives while the fleet keeps refusing the spawn, then the boot is cancelled at once and the VM ends destroyed without ever running', async () => {
    const { token, tenantId } = await createTenant(stack);
    // The fleet answers 500 until released, so the boot activity keeps retrying and the VM is
    // certainly still provisioning when the destroy arrives, however slow this machine is.
    await setFleet({ boot_ms: 1500, fault: 'http_500' });
    try {
      const spawned = await spawn(token);
      expect(spawned.status).toBe(202);
      const vmId = spawned.body.vm_id as string;

      const destroying = await destroy(token, vmId);
      expect(destroying.status).toBe(202);
      expect(destroying.body).toMatchObject({ vm_id: vmId, status: 'destroying' });
      const usage = () => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
      // The boot no longer holds the VM: nothing is provisioning, the destroy is under way.
      await eventually(async () => (await usage()).provisioning === 0, 10_000, 'boot cancelled');
      expect(await usage()).toMatchObject({ vms: 1, destroying: 1 });

      await setFleet({ fault: 'none' });
      await eventually(async () => (await statusOf(token, vmId)) === 'destroyed', 60_000, 'VM destroyed');
      expect(await usage()).toMatchObject({ vms: 0, provisioning: 0, destroying: 0 });
      // The fleet never created it, and never will: the boot is over.
      expect((await fleetStats(tenantId)).creates).toBe(0);

      const steps = await stack.request('GET', `/v1/audit?vm_id=${vmId}`, { token });
      const types = steps.body.items.map((entry: { event_type: string }) => entry.event_type);
      expect(types).toEqual(['VM_SPAWN_REQUESTED', 'VM_DESTROY_REQUESTED', 'VM_DESTROYED']);
      expect(await replayLiveRuns(stack.temporal, tenantWorkflowId(tenantId))).toBe(1);
    } finally {
      await setFleet({ boot_ms: 50, fault: 'none' });
    }
  }, 120_000);

  test('when a destroy arrives while the VM is booting, then it is destroyed at the fleet at once, long before the boot would end', async () => {
    const { token, tenantId } = await createTenant(stack);
    await setFleet({ boot_ms: 120_000 });
    try {
      const spawned = await spawn(token);
      const vmId = spawned.body.vm_id as string;
      await eventually(async () => (await fleetVm(vmId))?.status === 'booting', 10_000, 'VM booting at the fleet');
      const asked = Date.now();
      expect((await destroy(token, vmId)).status).toBe(202);
      await eventually(async () => (await statusOf(token, vmId)) === 'destroyed', 20_000, 'VM destroyed');
      expect(Date.now() - asked).toBeLessThan(20_000);
      expect((await fleetVm(vmId))?.status).toBe('destroyed');
      expect(await fleetStats(tenantId)).toMatchObject({ creates: 1, destroys: 1 });
    } finally {
      await setFleet({ boot_ms: 50 });
    }
  }, 60_000);

  test('when the same VM is destroyed twice, then the second destroy is answered 202 like the first and the fleet destroys once', async () => {
    const { token } = await createTenant(stack);
    const vmId = await spawnRunning(token);
    const before = await fleetDestroys();

    const first = await destroy(token, vmId);
    const second = await destroy(token, vmId);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(first.body).toMatchObject({ vm_id: vmId, status: 'destroying' });
    expect(['destroying', 'destroyed']).toContain(second.body.status);
    expect(second.body.vm_id).toBe(vmId);

    await eventually(async () => (await statusOf(token, vmId)) === 'destroyed');
    // And once more after it is gone: still 202, still no error.
    const third = await destroy(token, vmId);
    expect(third.status).toBe(202);
    expect(third.body).toMatchObject({ vm_id: vmId, status: 'destroyed' });
    expect((await fleetDestroys()) - before).toBe(1);
  });

  test("when a tenant destroys or reads another tenant's VM, then it gets the same 404 vm_not_found as for a VM that never existed, and the fleet is not called", async () => {
    const owner = await createTenant(stack);
    const intruder = await createTenant(stack);
    const vmId = await spawnRunning(owner.token);
    const destroysBefore = await fleetDestroys();

    const foreign = await destroy(intruder.token, vmId);
    const unknown = await destroy(intruder.token, randomUUID());
    expect(foreign.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(foreign.headers.get('content-type')).toBe(unknown.headers.get('content-type'));
    expect(foreign.body.code).toBe('vm_not_found');
    expect(problemShape(foreign.body)).toEqual(problemShape(unknown.body));

    const foreignRead = await getVm(intruder.token, vmId);
    const unknownRead = await getVm(intruder.token, randomUUID());
    expect(foreignRead.status).toBe(404);
    expect(foreignRead.body.code).toBe('vm_not_found');
    expect(problemShape(foreignRead.body)).toEqual(problemShape(unknownRead.body));

    expect(await fleetDestroys()).toBe(destroysBefore);
    expect((await fleetVm(vmId))?.status).toBe('running');
    expect(await statusOf(owner.token, vmId)).toBe('running');
  });

  test('when a tenant lists its VMs, then pages follow next_cursor over only its own VMs and ?status= filters them', async () => {
    const { token, tenantId } = await createTenant(stack);
    const other = await createTenant(stack);
    const otherVm = await spawnRunning(other.token);
    const vmIds: string[] = [];
    for (let i = 0; i < 5; i++) vmIds.push(await spawnRunning(token, { ...SMALL_VM, name: `vm-${i}` }));

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor ? `?limit=2&cursor=${encodeURIComponent(cursor)}` : '?limit=2';
      const page = await stack.request('GET', `/v1/vms${query}`, { token });
      expect(page.status).toBe(200);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      for (const vm of page.body.items) expect(vm.tenant_id).toBe(tenantId);
      seen.push(...page.body.items.map((vm: { vm_id: string }) => vm.vm_id));
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    // Every VM exactly once, in creation order, and none of the other tenant's.
    expect(seen).toEqual(vmIds);
    expect(seen).not.toContain(otherVm);

    const gone = vmIds[1]!;
    expect((await destroy(token, gone)).status).toBe(202);
    await eventually(async () => (await statusOf(token, gone)) === 'destroyed');

    const destroyed = await stack.request('GET', '/v1/vms?status=destroyed', { token });
    expect(destroyed.body.items.map((vm: { vm_id: string }) => vm.vm_id)).toEqual([gone]);
    const running = await stack.request('GET', '/v1/vms?status=running', { token });
    expect(running.body.items.map((vm: { vm_id: string }) => vm.vm_id)).toEqual(vmIds.filter((id) => id !== gone));

    const badStatus = await stack.request('GET', '/v1/vms?status=exploded', { token });
    expect(badStatus.status).toBe(400);
    expect(badStatus.body.code).toBe('invalid_request');
  });
});
