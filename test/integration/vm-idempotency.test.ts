import { randomUUID } from 'node:crypto';
import { fleetTenantStats, fleetVms } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';

/**
 * Idempotency-Key on spawn and destroy: a retry gets the first answer and changes nothing; the same
 * key on another request is refused; keys belong to one tenant.
 */
describe('Idempotency-Key on VM spawn and destroy', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const spawn = (token: string, key: string, body: object = SMALL_VM) => stack.request('POST', '/v1/vms', { token, body, headers: { 'Idempotency-Key': key } });
  const destroy = (token: string, vmId: string, key: string) => stack.request('DELETE', `/v1/vms/${vmId}`, { token, headers: { 'Idempotency-Key': key } });
  const replayed = (response: ApiResponse) => response.headers.get('idempotent-replayed') === 'true';

  const fleetStats = (tenantId: string) => fleetTenantStats(stack.fleet.url, tenantId);
  const fleetVmIds = async (tenantId: string) => (await fleetVms(stack.fleet.url, tenantId)).map((vm) => vm.vm_id);

  const statusOf = async (token: string, vmId: string) => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status as string;

  test('when a spawn is repeated with the same key and body, then the same VM is answered as a replay and the fleet holds one VM', async () => {
    const { token, tenantId } = await createTenant(stack);
    const key = `spawn-${randomUUID()}`;

    const first = await spawn(token, key);
    expect(first.status).toBe(202);
    expect(replayed(first)).toBe(false);
    const second = await spawn(token, key);
    expect(second.status).toBe(202);
    expect(replayed(second)).toBe(true);
    expect(second.body).toEqual(first.body);

    await eventually(async () => (await statusOf(token, first.body.vm_id)) === 'running');
    // A replay after the VM has settled still answers the first response and spawns nothing.
    const third = await spawn(token, key);
    expect(third.status).toBe(202);
    expect(replayed(third)).toBe(true);
    expect(third.body.vm_id).toBe(first.body.vm_id);

    expect(await fleetVmIds(tenantId)).toEqual([first.body.vm_id]);
    expect((await fleetStats(tenantId)).creates).toBe(1);
    const listed = await stack.request('GET', '/v1/vms', { token });
    expect(listed.body.items.map((vm: { vm_id: string }) => vm.vm_id)).toEqual([first.body.vm_id]);
  });

  test('when a key is reused with a different body, then the API answers 422 idempotency_key_reused and spawns nothing', async () => {
    const { token, tenantId } = await createTenant(stack);
    const key = `spawn-${randomUUID()}`;
    const first = await spawn(token, key);
    expect(first.status).toBe(202);

    const reused = await spawn(token, key, { ...SMALL_VM, vcpus: 2 });
    expect(reused.status).toBe(422);
    expect(reused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(reused.body).toMatchObject({ status: 422, code: 'idempotency_key_reused' });

    await eventually(async () => (await statusOf(token, first.body.vm_id)) === 'running');
    expect(await fleetVmIds(tenantId)).toEqual([first.body.vm_id]);
  });

  test('when requests under one key arrive concurrently, then exactly one is processed and the others are replays or 409 in flight', async () => {
    const { token, tenantId } = await createTenant(stack);
    const key = `spawn-${randomUUID()}`;

    const answers = await Promise.all(Array.from({ length: 5 }, () => spawn(token, key)));
    const processed = answers.filter((r) => r.status === 202 && !replayed(r));
    expect(processed).toHaveLength(1);
    const vmId = processed[0]!.body.vm_id;
    for (const other of answers.filter((r) => r !== processed[0])) {
      if (other.status === 202) {
        expect(replayed(other)).toBe(true);
        expect(other.body.vm_id).toBe(vmId);
      } else {
        expect(other.status).toBe(409);
        expect(other.body).toMatchObject({ code: 'idempotency_key_in_flight' });
        expect(other.headers.get('retry-after')).toBe('1');
      }
    }

    await eventually(async () => (await statusOf(token, vmId)) === 'running');
    expect(await fleetVmIds(tenantId)).toEqual([vmId]);
    // Once the first request finished, a retry of a 409 is answered with the stored response.
    const retried = await spawn(token, key);
    expect(retried.status).toBe(202);
    expect(replayed(retried)).toBe(true);
    expect(retried.body.vm_id).toBe(vmId);
  });

  test('when two tenants use the same key, then each gets its own VM', async () => {
    const a = await createTenant(stack);
    const b = await createTenant(stack);
    const key = `shared-${randomUUID()}`;

    const spawnedA = await spawn(a.token, key);
    const spawnedB = await spawn(b.token, key);
    expect(spawnedA.status).toBe(202);
    expect(spawnedB.status).toBe(202);
    expect(replayed(spawnedB)).toBe(false);
    expect(spawnedB.body.vm_id).not.toBe(spawnedA.body.vm_id);
    expect(spawnedA.body.tenant_id).toBe(a.tenantId);
    expect(spawnedB.body.tenant_id).toBe(b.tenantId);

    await eventually(async () => (await statusOf(a.token, spawnedA.body.vm_id)) === 'running' && (await statusOf(b.token, spawnedB.body.vm_id)) === 'running');
    expect(await fleetVmIds(a.tenantId)).toEqual([spawnedA.body.vm_id]);
    expect(await fleetVmIds(b.tenantId)).toEqual([spawnedB.body.vm_id]);
  });

  test('when a destroy is repeated with the same key, then the first answer is replayed and the fleet destroys once; the key on another VM gets 422', async () => {
    const { token, tenantId } = await createTenant(stack);
    const vmId = (await spawn(token, `spawn-${randomUUID()}`)).body.vm_id as string;
    const otherVmId = (await spawn(token, `spawn-${randomUUID()}`)).body.vm_id as string;
    await eventually(async () => (await statusOf(token, vmId)) === 'running' && (await statusOf(token, otherVmId)) === 'running');

    const key = `destroy-${randomUUID()}`;
    const first = await destroy(token, vmId, key);
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ vm_id: vmId, status: 'destroying' });
    expect(replayed(first)).toBe(false);
    const second = await destroy(token, vmId, key);
    expect(second.status).toBe(202);
    expect(replayed(second)).toBe(true);
    expect(second.body).toEqual(first.body);

    const reused = await destroy(token, otherVmId, key);
    expect(reused.status).toBe(422);
    expect(reused.body).toMatchObject({ code: 'idempotency_key_reused' });

    await eventually(async () => (await statusOf(token, vmId)) === 'destroyed');
    expect((await fleetStats(tenantId)).destroys).toBe(1);
    expect(await statusOf(token, otherVmId)).toBe('running');
  });
});
