import { setTimeout as sleep } from 'node:timers/promises';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { configureFleet, fleetVm } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const BOOT_TIMEOUT_MS = 3000;

/**
 * A VM that does not run within the boot deadline is failed, released and destroyed at the fleet;
 * a tenant has a bounded number of VMs in flight.
 */
describe('VM boot deadline and VMs in flight', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ limits: { boot_timeout_ms: BOOT_TIMEOUT_MS, max_in_flight: 2 } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  const setFleet = (controls: SimControlsPatch) => configureFleet(stack.fleet.url, controls);
  const fleetStatus = async (vmId: string) => (await fleetVm(stack.fleet.url, vmId))?.status ?? null;

  test.each<[string, SimControlsPatch, string | null]>([
    ['a boot that never ends', { boot_ms: 600_000 }, 'destroyed'],
    ['a fleet that keeps answering 500', { boot_ms: 50, fault: 'http_500' }, null],
  ])(
    'when %s, then after the deadline the VM is failed with boot_timeout, its quota is free again and the fleet holds nothing',
    async (_label, fleet, fleetEnd) => {
      const { token, tenantId } = await createTenant(stack, { max_vms: 1 });
      await setFleet(fleet);
      try {
        const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
        expect(spawned.status).toBe(202);
        const vmId = spawned.body.vm_id as string;
        // Past the deadline the VM is failed once the fleet has destroyed whatever it may hold: an
        // unreachable fleet delays that, it never skips it.
        await sleep(BOOT_TIMEOUT_MS + 1000);
        await setFleet({ fault: 'none' });
        const vm = await eventually(
          async () => {
            const res = await stack.request('GET', `/v1/vms/${vmId}`, { token });
            return res.body.status === 'failed' ? res.body : undefined;
          },
          BOOT_TIMEOUT_MS + 30_000,
          'VM failed',
        );
        expect(vm.failure_reason).toBe('boot_timeout');
        expect(await fleetStatus(vmId)).toBe(fleetEnd);
        const usage = await eventually(async () => {
          const u = await stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
          return u.vms === 0 ? u : undefined;
        });
        expect(usage).toMatchObject({ vms: 0, storage_gb: 0, provisioning: 0 });
        // The released quota admits the next VM.
        expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
        const audit = await stack.request('GET', `/v1/audit?vm_id=${vmId}`, { token });
        expect(audit.body.items.map((e: { event_type: string }) => e.event_type)).toEqual(['VM_SPAWN_REQUESTED', 'VM_FAILED']);
      } finally {
        await setFleet({ fault: 'none', boot_ms: 50 });
      }
    },
    60_000,
  );

  test('when as many VMs boot as a tenant may have in flight, then the next spawn is 429 in_flight_limit with Retry-After, and admitted once one has booted', async () => {
    const { token } = await createTenant(stack, { max_vms: 10 });
    await setFleet({ boot_ms: 1500 });
    try {
      for (let i = 0; i < 2; i++) expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
      const refused = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      expect(refused.status).toBe(429);
      expect(refused.body).toMatchObject({ code: 'in_flight_limit', in_flight: 2, limit: 2 });
      expect(refused.headers.get('retry-after')).toBe('5');
      const admitted = await eventually(
        async () => {
          const res = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
          return res.status === 202 ? res : undefined;
        },
        20_000,
        'a spawn admitted after a boot',
      );
      expect(admitted.body.status).toBe('provisioning');
    } finally {
      await setFleet({ boot_ms: 50 });
    }
  }, 60_000);
});
