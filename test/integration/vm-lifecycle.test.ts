import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

describe('VM lifecycle through the tenant workflow', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when a tenant spawns a VM, then it is accepted as provisioning and converges to running', async () => {
    const { token, tenantId } = await createTenant(stack);
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    expect(spawned.body).toMatchObject({ tenant_id: tenantId, status: 'provisioning', vcpus: 1, storage_gb: 5, image: 'debian-12' });
    const vmId = spawned.body.vm_id;
    const running = await eventually(async () => {
      const got = await stack.request('GET', `/v1/vms/${vmId}`, { token });
      return got.body.status === 'running' ? got : undefined;
    });
    expect(running.status).toBe(200);
    // The answer (built from the request) said what the row holds, but for the status it has moved on to.
    const { status: _accepted, updated_at: _admittedAt, ...answered } = spawned.body;
    const { status: _now, updated_at: _movedAt, ...stored } = running.body;
    expect(answered).toEqual(stored);
    expect(spawned.body.updated_at).toBe(spawned.body.created_at);

    const destroyed = await stack.request('DELETE', `/v1/vms/${vmId}`, { token });
    expect(destroyed.status).toBe(202);
    expect(destroyed.body.status).toBe('destroying');
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'destroyed');
  });
});
