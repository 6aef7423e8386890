import type { TenantSnapshot as LegacyTenantSnapshot } from '../../src/shared/legacy/tenant-v1.state';
import type { CarriedTenantStateV2 } from '../../src/shared/legacy/tenant-v2.state';
import type { SpawnVmRequest } from '../../src/shared/tenant-workflow.messages';
import { RECENT_MEMORY, TenantState } from '../../src/workflows/tenant-state';
import { fromV1, fromV2 } from '../../src/workflows/legacy/older-carried-state';

const CONTEXT = { request_id: 'r-1', actor_token_id: 'tok-1', actor_scope: 'vm:write', source_ip: '10.0.0.1', user_agent: 'test' };
const NOW = Date.parse('2026-12-06T00:00:00.000Z');
const BOOT_MS = 60_000;
const request = (vmId: string, storageGb = 5, quota?: SpawnVmRequest['quota']): SpawnVmRequest => ({
  vm_id: vmId,
  shape: { vcpus: 1, memory_mb: 512, storage_gb: storageGb, image: 'debian-12', name: null },
  created_at: '2026-11-27T00:00:00.000Z',
  context: CONTEXT,
  quota,
});
const totals = (maxVms: number, storageQuotaGb = 100, vms = 0, storageGb = 0) => ({
  quota: { max_vms: maxVms, storage_quota_gb: storageQuotaGb, version: 1 },
  closed: false,
  vms,
  storage_gb: storageGb,
});
const newState = (maxVms = 2, storageQuotaGb = 100, maxInFlight = 10) => new TenantState('acme', maxInFlight, totals(maxVms, storageQuotaGb));
const admit = (state: TenantState, vmId: string, storageGb = 5) => state.admit(request(vmId, storageGb), NOW, BOOT_MS);

describe('TenantState', () => {
  test('when VMs are admitted up to max_vms, then the next spawn is refused naming the limit, in use and requested', () => {
    const state = newState(2);
    for (const id of ['a', 'b']) {
      expect(state.spawnRefusal(request(id))).toBeNull();
      admit(state, id);
    }
    expect(state.spawnRefusal(request('c'))).toEqual({ type: 'QuotaExceeded', details: { limit: 'max_vms', limit_value: 2, in_use: 2, requested: 1 } });
  });

  test('when storage would pass the quota, then the spawn is refused on storage_quota_gb', () => {
    const state = newState(10, 12);
    admit(state, 'a', 10);
    expect(state.spawnRefusal(request('b', 3))).toEqual({
      type: 'QuotaExceeded',
      details: { limit: 'storage_quota_gb', limit_value: 12, in_use: 10, requested: 3 },
    });
    expect(state.spawnRefusal(request('b', 2))).toBeNull();
  });

  test('when a VM is admitted, then it is decided provisioning with its boot deadline counted from the admission', () => {
    const state = newState();
    const vm = admit(state, 'a');
    expect(vm).toMatchObject({ phase: 'provisioning', release: 'reserved', boot_deadline_ms: NOW + BOOT_MS });
    expect(state.decided('a')).toBe('provisioning');
    expect(state.decided('never-seen')).toBeNull();
  });

  test('when a running VM is destroyed and its teardown moved the row, then its quota is free and it is remembered destroyed', () => {
    const state = newState(1);
    admit(state, 'a');
    state.markRunning('a');
    expect({ inFlight: state.inFlight.size, vms: state.vms, decided: state.decided('a') }).toEqual({ inFlight: 0, vms: 1, decided: null });
    state.trackDestroy('a', 5, { request_id: 'r-2', actor_token_id: null });
    expect(state.decided('a')).toBe('destroying');
    state.settle('a', 'destroyed', true);
    expect({ vms: state.vms, storage: state.storageGb, inFlight: state.inFlight.size }).toEqual({ vms: 0, storage: 0, inFlight: 0 });
    expect(state.decided('a')).toBe('destroyed');
    expect(state.spawnRefusal(request('b'))).toBeNull();
  });

  test('when a destroy of a VM not in flight finds its row already settled (a stale repeat), then nothing is released twice', () => {
    const state = newState(3, 100);
    state.vms = 1;
    state.storageGb = 5;
    state.trackDestroy('forgotten', 5, { request_id: 'r-late', actor_token_id: null });
    state.settle('forgotten', 'destroyed', false);
    expect({ vms: state.vms, storage: state.storageGb }).toEqual({ vms: 1, storage: 5 });
  });

  test('when an admitted VM fails, then its reservation is released whatever its row said', () => {
    const state = newState(1);
    admit(state, 'a');
    state.settle('a', 'failed', false);
    expect({ vms: state.vms, decided: state.decided('a') }).toEqual({ vms: 0, decided: 'failed' });
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
    admit(state, 'a');
    expect(state.spawnRefusal(request('b', 5, { max_vms: 2, storage_quota_gb: 100, version: 2 }))).toBeNull();
    expect(state.spawnRefusal(request('b', 5, { max_vms: 9, storage_quota_gb: 100, version: 1 }))).toMatchObject({ type: 'QuotaExceeded' });
    expect(state.quota.version).toBe(1);
  });

  test('when as many VMs are in flight as allowed, then the next spawn is refused with InFlightLimit, whatever the quota', () => {
    const state = newState(100, 1000, 3);
    for (const id of ['a', 'b', 'c']) admit(state, id);
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

  test('when a run is rebuilt with undecided requests, then it holds them pending, counted in order while they fit, so that no new request takes their room', () => {
    const undecided = ['u1', 'u2', 'u3'].map((vm_id, i) => ({ vm_id, storage_gb: 5, created_at_ms: NOW + i }));
    const state = TenantState.rebuilt('acme', 10, totals(3, 100, 1, 5), [], undecided, BOOT_MS);
    expect({ vms: state.vms, storage: state.storageGb }).toEqual({ vms: 3, storage: 15 });
    expect(state.pendingIds()).toEqual(['u1', 'u2', 'u3']);
    expect(state.inFlight.get('u1')).toMatchObject({ phase: 'pending', release: 'reserved', boot_deadline_ms: NOW + BOOT_MS });
    expect(state.inFlight.get('u3')).toMatchObject({ phase: 'pending', release: 'none' });
    // Not decided yet: a resend of any of them is decided at its update, not answered from memory.
    for (const id of ['u1', 'u2', 'u3']) expect(state.decided(id)).toBeNull();
    expect(state.spawnRefusal(request('new'))).toEqual({ type: 'QuotaExceeded', details: { limit: 'max_vms', limit_value: 3, in_use: 3, requested: 1 } });
    expect(state.usage(0)).toMatchObject({ vms: 3, provisioning: 3, destroying: 0 });
  });

  test('when pending requests are decided, then those that fit are admitted with their boot deadline and the rest are lost, counted nowhere', () => {
    const undecided = ['u1', 'u2', 'u3'].map((vm_id, i) => ({ vm_id, storage_gb: 5, created_at_ms: NOW + i }));
    const state = TenantState.rebuilt('acme', 10, totals(3, 100, 1, 5), [], undecided, BOOT_MS);
    // Decided in any order (each at its own update): the held room is given back, then judged again.
    expect(state.decidePending('u2')).toMatchObject({ vm: { phase: 'provisioning', release: 'reserved', boot_deadline_ms: NOW + 1 + BOOT_MS }, refusal: null });
    expect(state.decidePending('u3')).toMatchObject({ vm: { phase: 'lost', release: 'none' }, refusal: { type: 'QuotaExceeded' } });
    expect(state.decidePending('u1')).toMatchObject({ vm: { phase: 'provisioning' }, refusal: null });
    expect(state.decidePending('u1')).toBeNull();
    expect({ vms: state.vms, storage: state.storageGb, pending: state.pendingIds() }).toEqual({ vms: 3, storage: 15, pending: [] });
    expect([state.decided('u1'), state.decided('u2'), state.decided('u3')]).toEqual(['provisioning', 'provisioning', 'failed']);
    // Even if its row was confirmed by the lost run meanwhile, failing it gives back nothing it never took.
    state.settle('u3', 'failed', true);
    expect(state.vms).toBe(3);
    // Refused, not remembered: the same VM asked for again (its next attempt) is decided anew.
    expect(state.decided('u3')).toBeNull();
  });

  test('when a pending request is found settled meanwhile, then releasing it gives its held room back', () => {
    const state = TenantState.rebuilt('acme', 10, totals(3, 100, 1, 5), [], [{ vm_id: 'u1', storage_gb: 5, created_at_ms: NOW }], BOOT_MS);
    expect(state.vms).toBe(2);
    expect(state.releasePending('u1')).toBe(true);
    expect({ vms: state.vms, storage: state.storageGb, inFlight: state.inFlight.size, decided: state.decided('u1') }).toEqual({
      vms: 1,
      storage: 5,
      inFlight: 0,
      decided: null,
    });
    expect(state.releasePending('u1')).toBe(false);
  });

  test('when more VMs settle than it remembers, then it forgets the oldest first', () => {
    const state = newState(RECENT_MEMORY + 10, 100_000, RECENT_MEMORY + 10);
    for (let i = 0; i < RECENT_MEMORY + 5; i++) {
      admit(state, `vm-${i}`);
      state.settle(`vm-${i}`, 'failed', true);
    }
    expect(state.decided('vm-0')).toBeNull();
    expect(state.decided(`vm-${RECENT_MEMORY + 4}`)).toBe('failed');
    expect(state.toCarried().recent).toHaveLength(RECENT_MEMORY);
  });

  test('when 100,000 VMs are held and the in-flight limit of 1,000 is reached, then the carried state stays under the 512 KiB payload warning of Temporal and round-trips', () => {
    const state = new TenantState('acme', 1000, {
      quota: { max_vms: 100_000, storage_quota_gb: 1_000_000, version: 7 },
      closed: false,
      vms: 99_000,
      storage_gb: 990_000,
    });
    for (let i = 0; i < 1000; i++)
      state.admit(
        { ...request(crypto.randomUUID(), 10), context: { ...CONTEXT, request_id: crypto.randomUUID(), actor_token_id: `tok_${'x'.repeat(24)}` } },
        NOW,
        BOOT_MS,
      );
    const carried = state.toCarried();
    for (let i = 0; i < RECENT_MEMORY; i++) carried.recent.push([crypto.randomUUID(), 'destroyed']);
    expect(carried.vms).toBe(100_000);
    // Temporal warns past 512 KiB per payload (blob size warn limit) and refuses past 2 MiB.
    expect(Buffer.byteLength(JSON.stringify(carried))).toBeLessThan(512 * 1024);
    expect(TenantState.fromCarried('acme', 1000, carried).toCarried()).toEqual(carried);
  });

  test('when a state-version-2 run hands over, then its VMs in flight stay reserved with a boot deadline from now and only settled ids are remembered', () => {
    const cause = { request_id: 'r-v2', actor_token_id: null };
    const v2: CarriedTenantStateV2 = {
      state_version: 2,
      quota: { max_vms: 5, storage_quota_gb: 50, version: 4 },
      closed: false,
      vms: 3,
      storage_gb: 15,
      in_flight: [
        { vm_id: 'booting', storage_gb: 5, phase: 'provisioning', cause },
        { vm_id: 'going', storage_gb: 5, phase: 'destroying', cause },
      ],
      recent: [
        ['gone', 'destroyed'],
        ['was-running', 'running'],
      ],
    };
    const state = fromV2('acme', 10, v2, NOW, BOOT_MS);
    expect(state.usage(0)).toMatchObject({ vms: 3, storage_gb: 15, provisioning: 1, destroying: 1, quota_version: 4 });
    expect(state.inFlight.get('booting')).toMatchObject({ release: 'reserved', boot_deadline_ms: NOW + BOOT_MS });
    expect(state.inFlight.get('going')).toMatchObject({ release: 'reserved', boot_deadline_ms: null });
    expect(state.decided('gone')).toBe('destroyed');
    // A running VM remembered by version 2 must not answer a destroy from memory (it would do nothing).
    expect(state.decided('was-running')).toBeNull();
  });

  test('when a version-1 run hands over its snapshot, then totals, in-flight VMs and settled ids carry over and the quota version is 0', () => {
    const spawn = (vmId: string) => ({ ...request(vmId), context: CONTEXT });
    const legacy: LegacyTenantSnapshot = {
      quota: { max_vms: 5, storage_quota_gb: 50 },
      closed: false,
      vms: [
        { vm_id: 'running', storage_gb: 5, phase: 'running', spawn: spawn('running'), destroy: null },
        { vm_id: 'booting', storage_gb: 5, phase: 'provisioning', spawn: spawn('booting'), destroy: null },
        {
          vm_id: 'booting-doomed',
          storage_gb: 5,
          phase: 'provisioning',
          spawn: spawn('booting-doomed'),
          destroy: { context: { ...CONTEXT, request_id: 'r-destroy' } },
        },
        { vm_id: 'going', storage_gb: 5, phase: 'destroying', spawn: spawn('going'), destroy: { context: CONTEXT } },
      ],
      settled: [['gone', 'destroyed']],
    };
    const state = fromV1('acme', 10, legacy, NOW, BOOT_MS);
    expect({ vms: state.vms, storage: state.storageGb, quota: state.quota }).toEqual({
      vms: 4,
      storage: 20,
      quota: { max_vms: 5, storage_quota_gb: 50, version: 0 },
    });
    expect([...state.inFlight.values()].map((vm) => [vm.vm_id, vm.phase, vm.cause.request_id])).toEqual([
      ['booting', 'provisioning', 'r-1'],
      ['booting-doomed', 'destroying', 'r-destroy'],
      ['going', 'destroying', 'r-1'],
    ]);
    expect(state.decided('gone')).toBe('destroyed');
    expect(state.applyQuota({ max_vms: 6, storage_quota_gb: 60, version: 1 })).toBe(true);
  });
});
