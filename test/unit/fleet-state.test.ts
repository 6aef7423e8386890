import { randomUUID } from 'node:crypto';
import { createFleetState, type FleetSnapshot, type FleetStateDeps, type SpawnControls } from '../../src/fleet-simulator/fleet-state';
import type { FleetSpawnRequest } from '../../src/fleet/fleet-types';

function setup(overrides: Partial<SpawnControls> = {}, initial?: FleetSnapshot) {
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const controls: SpawnControls = { boot_ms: 1000, failure_rate: 0, refused_images: [], ...overrides };
  const saved: FleetSnapshot[] = [];
  const deps: FleetStateDeps = {
    hosts: { count: 2, vcpus: 8, memory_mb: 8192, storage_gb: 100 },
    controls: () => controls,
    now: () => clock,
    random: () => 0.5,
    initial,
    onChange: (read) => saved.push(structuredClone(read())),
  };
  return { state: createFleetState(deps), advance: (ms: number) => (clock += ms), saved };
}

function spawnRequest(overrides: Partial<FleetSpawnRequest> = {}): FleetSpawnRequest {
  return { request_id: randomUUID(), tenant_id: 'acme', vcpus: 2, memory_mb: 1024, storage_gb: 10, image: 'ubuntu', ...overrides };
}

describe('fleet state', () => {
  test('when boot_ms has not passed, then the VM is booting, and when it has, then it is running with ready_at', () => {
    const { state, advance } = setup();
    const req = spawnRequest();
    state.spawn(req);
    expect(state.get(req.request_id)).toMatchObject({ status: 'booting', ready_at: null });
    advance(999);
    expect(state.get(req.request_id)?.status).toBe('booting');
    advance(1);
    expect(state.get(req.request_id)).toMatchObject({ status: 'running', failure_reason: null, ready_at: '2026-01-01T00:00:01.000Z' });
  });

  test('when the die roll is under failure_rate, then the VM boots and then fails with boot_failed', () => {
    const { state, advance } = setup({ failure_rate: 0.6 });
    const req = spawnRequest();
    state.spawn(req);
    expect(state.get(req.request_id)?.status).toBe('booting');
    advance(1000);
    expect(state.get(req.request_id)).toMatchObject({ status: 'failed', failure_reason: 'boot_failed', ready_at: null });
  });

  test('when the same request_id comes with a different body, then it is refused as a conflict', () => {
    const { state } = setup();
    const req = spawnRequest();
    expect(state.spawn(req).outcome).toBe('created');
    expect(state.spawn({ ...req }).outcome).toBe('existing');
    expect(state.spawn({ ...req, tenant_id: 'other' })).toMatchObject({ outcome: 'rejected', code: 'request_id_conflict' });
    expect(state.stats()).toMatchObject({ spawn_calls: 3, creates: 1 });
  });

  test('when VMs are placed, then they spread to the host with most free vcpus and stop at capacity', () => {
    const { state } = setup();
    const a = state.spawn(spawnRequest({ vcpus: 6 }));
    const b = state.spawn(spawnRequest({ vcpus: 6 }));
    expect(a.outcome === 'created' && b.outcome === 'created' && a.vm.host_id !== b.vm.host_id).toBe(true);
    expect(state.spawn(spawnRequest({ vcpus: 3 }))).toMatchObject({ outcome: 'rejected', code: 'no_capacity' });
    expect(state.spawn(spawnRequest({ vcpus: 2 })).outcome).toBe('created');
  });

  test('when a boot has failed, then its capacity is free again', () => {
    const { state, advance } = setup({ failure_rate: 1 });
    state.spawn(spawnRequest({ vcpus: 8 }));
    state.spawn(spawnRequest({ vcpus: 8 }));
    expect(state.spawn(spawnRequest({ vcpus: 8 })).outcome).toBe('rejected');
    advance(1000);
    expect(state.spawn(spawnRequest({ vcpus: 8 })).outcome).toBe('created');
  });

  test('when the state is rebuilt from a snapshot taken mid-boot, then the VM still converges to running', () => {
    const first = setup();
    const req = spawnRequest();
    first.state.spawn(req);
    const snapshot = first.saved.at(-1);
    const second = setup({}, snapshot);
    expect(second.state.get(req.request_id)?.status).toBe('booting');
    second.advance(1000);
    expect(second.state.get(req.request_id)?.status).toBe('running');
    expect(second.state.stats()).toMatchObject({ creates: 1, by_tenant: { acme: { creates: 1 } } });
  });

  test('when a VM is destroyed twice, then it is counted once and keeps its first destroyed answer', () => {
    const { state, advance, saved } = setup();
    const req = spawnRequest();
    state.spawn(req);
    const first = state.destroy(req.request_id);
    advance(5000);
    expect(state.destroy(req.request_id)).toEqual(first);
    expect(first).toMatchObject({ status: 'destroyed', ready_at: null });
    expect(state.stats().destroys).toBe(1);
    expect(saved).toHaveLength(2);
    expect(state.destroy(randomUUID())).toBeNull();
  });
});

describe('fleet state tombstones', () => {
  test('when a destroyed VM is created again, with its own body or another, then it is refused vm_tombstoned and no VM is made', () => {
    const { state } = setup();
    const req = spawnRequest({ vcpus: 8 });
    state.spawn(req);
    const destroyed = state.destroy(req.request_id);

    expect(state.spawn(req)).toMatchObject({ outcome: 'rejected', code: 'vm_tombstoned' });
    expect(state.spawn({ ...req, tenant_id: 'other' })).toMatchObject({ outcome: 'rejected', code: 'vm_tombstoned' });
    expect(state.get(req.request_id)).toEqual(destroyed);
    expect(state.list({})).toHaveLength(1);
    expect(state.stats()).toMatchObject({ spawn_calls: 3, creates: 1, destroys: 1 });
  });

  test('when an id is destroyed before its create arrives, then the destroy answers null and the create is refused vm_tombstoned with no VM', () => {
    const { state, advance } = setup();
    const req = spawnRequest();

    expect(state.destroy(req.request_id)).toBeNull();
    advance(60_000);

    expect(state.spawn(req)).toMatchObject({ outcome: 'rejected', code: 'vm_tombstoned', detail: expect.stringMatching(/before its create/) });
    expect(state.get(req.request_id)).toBeNull();
    expect(state.list({})).toEqual([]);
    expect(state.stats()).toMatchObject({ spawn_calls: 1, creates: 0, destroys: 0 });
  });

  test('when an unseen id is destroyed twice, then both answer null, and its one tombstone is written once and keeps the first time', () => {
    const { state, advance, saved } = setup();
    const vmId = randomUUID();

    expect(state.destroy(vmId)).toBeNull();
    advance(5000);
    expect(state.destroy(vmId)).toBeNull();

    expect(saved).toHaveLength(1);
    expect(state.snapshot().tombstones).toEqual([{ vm_id: vmId, tombstoned_at: Date.parse('2026-01-01T00:00:00Z') }]);
  });

  test('when the state is rebuilt from a snapshot, then both a destroyed VM and a bare tombstone still refuse their create', () => {
    const first = setup();
    const destroyed = spawnRequest();
    const unseen = spawnRequest();
    first.state.spawn(destroyed);
    first.state.destroy(destroyed.request_id);
    first.state.destroy(unseen.request_id);

    const second = setup({}, first.saved.at(-1));

    expect(second.state.spawn(destroyed)).toMatchObject({ outcome: 'rejected', code: 'vm_tombstoned' });
    expect(second.state.spawn(unseen)).toMatchObject({ outcome: 'rejected', code: 'vm_tombstoned' });
    expect(second.state.stats()).toMatchObject({ creates: 1 });
  });
});
