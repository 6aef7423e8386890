import type { TenantSnapshot as LegacyTenantSnapshot } from '../../src/shared/legacy/tenant-v1.state';
import type { SpawnVmRequest } from '../../src/shared/tenant-workflow.messages';
import { RECENT_MEMORY, TenantState } from '../../src/workflows/tenant-state';

const CONTEXT = { request_id: 'r-1', actor_token_id: 'tok-1', actor_scope: 'vm:write', source_ip: '10.0.0.1', user_agent: 'test' };
const request = (vmId: string, storageGb = 5, quota?: SpawnVmRequest['quota']): SpawnVmRequest => ({
  vm_id: vmId,
  shape: { vcpus: 1, memory_mb: 512, storage_gb: storageGb, image: 'debian-12', name: null },
  created_at: '2026-11-27T00:00:00.000Z',
  context: CONTEXT,
  quota,
});
const newState = (maxVms = 2, storageQuotaGb = 100, maxInFlight = 10) =>
  new TenantState('acme', maxInFlight, { quota: { max_vms: maxVms, storage_quota_gb: storageQuotaGb, version: 1 }, closed: false, vms: 0, storage_gb: 0 });

describe('TenantState', () => {
  test('when VMs are reserved up to max_vms, then the next spawn is refused naming the limit, in use and requested', () => {
    const state = newState(2);
    for (const id of ['a', 'b']) {
      expect(state.spawnRefusal(request(id))).toBeNull();
      state.reserve(request(id));
    }
    expect(state.spawnRefusal(request('c'))).toEqual({ type: 'QuotaExceeded', details: { limit: 'max_vms', limit_value: 2, in_use: 2, requested: 1 } });
  });

  test('when storage would pass the quota, then the spawn is refused on storage_quota_gb', () => {
    const state = newState(10, 12);
    state.reserve(request('a', 10));
    expect(state.spawnRefusal(request('b', 3))).toEqual({ type: 'QuotaExceeded', details: { limit: 'storage_quota_gb', limit_value: 12, in_use: 10, requested: 3 } });
    expect(state.spawnRefusal(request('b', 2))).toBeNull();
  });

  test('when VMs settle, then their quota is free again and their status is remembered', () => {
    const state = newState(1);
    const vm = state.reserve(request('a'));
    vm.phase = 'provisioning';
    state.markRunning('a');
    expect(state.inFlight.size).toBe(0);
    expect(state.vms).toBe(1);
    state.trackDestroy('a', 5, { request_id: 'r-2', actor_token_id: null });
    state.settle('a', 'destroyed');
    expect({ vms: state.vms, storage: state.storageGb, inFlight: state.inFlight.size }).toEqual({ vms: 0, storage: 0, inFlight: 0 });
    expect(state.knownStatus('a')).toBe('destroyed');
    expect(state.spawnRefusal(request('b'))).toBeNull();
  });

  test('when an older quota version arrives after a newer one, then it is ignored', () => {
    const state = newState(2);
    expect(state.applyQuota({ max_vms: 5, storage_quota_gb: 100, version: 3 })).toBe(true);
    expect(state.applyQuota({ max_vms: 1, storage_quota_gb: 1, version: 2 })).toBe(false);
    expect(state.applyQuota({ max_vms: 1, storage_quota_gb: 1, version: 3 })).toBe(false);
    expect(state.quota).toEqual({ max_vms: 5, storage_quota_gb: 100, version: 3 });
  });

  test('when a spawn carries a newer quota, then it is judged by it without the state changing', () => {
    const state = newState(1);
    state.reserve(request('a'));
    expect(state.spawnRefusal(request('b', 5, { max_vms: 2, storage_quota_gb: 100, version: 2 }))).toBeNull();
    expect(state.spawnRefusal(request('b', 5, { max_vms: 9, storage_quota_gb: 100, version: 1 }))).toMatchObject({ type: 'QuotaExceeded' });
    expect(state.quota.version).toBe(1);
  });

  test('when as many VMs are in flight as allowed, then the next spawn is refused with InFlightLimit, whatever the quota', () => {
    const state = newState(100, 1000, 3);
    for (const id of ['a', 'b', 'c']) state.reserve(request(id));
    expect(state.spawnRefusal(request('d'))).toEqual({ type: 'InFlightLimit', details: { in_flight: 3, limit: 3 } });
  });

  test('when the tenant is closing or closed, then spawns are refused TenantClosed', () => {
    const state = newState();
    state.closing = true;
    expect(state.spawnRefusal(request('a'))).toEqual({ type: 'TenantClosed' });
    state.closing = false;
    state.closed = true;
    expect(state.spawnRefusal(request('a'))).toEqual({ type: 'TenantClosed' });
  });

  test('when a reservation is given back, then the totals are as before it', () => {
    const state = newState();
    state.reserve(request('a', 7));
    state.unreserve('a');
    expect({ vms: state.vms, storage: state.storageGb, known: state.knownStatus('a') }).toEqual({ vms: 0, storage: 0, known: null });
  });

  test('when more VMs settle than it remembers, then it forgets the oldest first', () => {
    const state = newState(RECENT_MEMORY + 10);
    for (let i = 0; i < RECENT_MEMORY + 5; i++) {
      state.reserve(request(`vm-${i}`));
      state.settle(`vm-${i}`, 'failed');
    }
    expect(state.knownStatus('vm-0')).toBeNull();
    expect(state.knownStatus(`vm-${RECENT_MEMORY + 4}`)).toBe('failed');
    expect(state.toCarried().recent).toHaveLength(RECENT_MEMORY);
  });

  test('when 100,000 VMs are held and the in-flight limit of 1,000 is reached, then the carried state stays under 256 KiB', () => {
    const state = new TenantState('acme', 1000, { quota: { max_vms: 100_000, storage_quota_gb: 1_000_000, version: 7 }, closed: false, vms: 99_000, storage_gb: 990_000 });
    for (let i = 0; i < 1000; i++) state.reserve({ ...request(crypto.randomUUID(), 10), context: { ...CONTEXT, request_id: crypto.randomUUID(), actor_token_id: `tok_${'x'.repeat(24)}` } });
    for (let i = 0; i < RECENT_MEMORY; i++) state.remember(crypto.randomUUID(), 'destroyed');
    const carried = state.toCarried();
    expect(carried.vms).toBe(100_000);
    expect(Buffer.byteLength(JSON.stringify(carried))).toBeLessThan(256 * 1024);
    expect(TenantState.fromCarried('acme', 1000, carried).toCarried()).toEqual(carried);
  });

  test('when a version-1 run hands over its snapshot, then totals, in-flight VMs and settled ids carry over and the quota version is 0', () => {
    const spawn = (vmId: string) => ({ ...request(vmId), context: CONTEXT });
    const legacy: LegacyTenantSnapshot = {
      quota: { max_vms: 5, storage_quota_gb: 50 },
      closed: false,
      vms: [
        { vm_id: 'running', storage_gb: 5, phase: 'running', spawn: spawn('running'), destroy: null },
        { vm_id: 'booting', storage_gb: 5, phase: 'provisioning', spawn: spawn('booting'), destroy: null },
        { vm_id: 'booting-doomed', storage_gb: 5, phase: 'provisioning', spawn: spawn('booting-doomed'), destroy: { context: { ...CONTEXT, request_id: 'r-destroy' } } },
        { vm_id: 'going', storage_gb: 5, phase: 'destroying', spawn: spawn('going'), destroy: { context: CONTEXT } },
      ],
      settled: [['gone', 'destroyed']],
    };
    const state = TenantState.fromLegacy('acme', 10, legacy);
    expect({ vms: state.vms, storage: state.storageGb, quota: state.quota }).toEqual({ vms: 4, storage: 20, quota: { max_vms: 5, storage_quota_gb: 50, version: 0 } });
    expect([...state.inFlight.values()].map((vm) => [vm.vm_id, vm.phase, vm.cause.request_id])).toEqual([
      ['booting', 'provisioning', 'r-1'],
      ['booting-doomed', 'destroying', 'r-destroy'],
      ['going', 'destroying', 'r-1'],
    ]);
    expect(state.knownStatus('gone')).toBe('destroyed');
    expect(state.applyQuota({ max_vms: 6, storage_quota_gb: 60, version: 1 })).toBe(true);
  });
});
