import type { FleetSpawnRequest, FleetVm, FleetVmStatus } from '../fleet/fleet-types';

/**
 * The simulated fleet: hosts with capacity, the VMs placed on them, and call counters. Pure and
 * synchronous; time and chance come in as `now` and `random`, persistence as `onChange`.
 *
 * A VM's status is computed from timestamps rather than advanced by timers: it is booting until
 * `boot_done_at`, then running (or failed, decided by a die roll at creation), and destroyed once
 * `destroyed_at` is set. A simulator restarted mid-boot therefore converges on its own.
 *
 * Tombstones (docs/fleet-api.md, "Tombstones"): an id the fleet was told to destroy can never be
 * created again, so a spawn that arrives late (a retry, a delayed packet) cannot bring back a VM
 * its owner has already let go. A destroyed VM is its own tombstone (its record keeps
 * `destroyed_at`); a destroy of an id the fleet has never seen records a bare tombstone. Both are
 * kept forever, and a spawn of either id is refused with `vm_tombstoned`.
 */

export interface HostShape {
  count: number;
  vcpus: number;
  memory_mb: number;
  storage_gb: number;
}

/** The controls that shape a new VM; read at spawn time. */
export interface SpawnControls {
  boot_ms: number;
  failure_rate: number;
  refused_images: readonly string[];
}

export interface StoredVm {
  vm_id: string;
  tenant_id: string;
  host_id: string;
  vcpus: number;
  memory_mb: number;
  storage_gb: number;
  image: string;
  /** Epoch milliseconds. */
  created_at: number;
  boot_done_at: number;
  boot_fails: boolean;
  destroyed_at: number | null;
}

/** An id destroyed before the fleet saw its create: no VM, only the refusal of any later create. */
export interface StoredTombstone {
  vm_id: string;
  /** Epoch milliseconds of the first destroy. */
  tombstoned_at: number;
}

export interface CallCounts {
  spawn_calls: number;
  creates: number;
  destroys: number;
}

export interface FleetStats extends CallCounts {
  by_tenant: Record<string, CallCounts>;
}

export interface FleetSnapshot {
  /** 2 added `tombstones`; state-store.ts still reads version 1 files (as having none). */
  version: 2;
  vms: StoredVm[];
  /** Only ids with no VM record; a destroyed VM is tombstoned by its record. */
  tombstones: StoredTombstone[];
  stats: FleetStats;
}

export type SpawnOutcome =
  | { outcome: 'created' | 'existing'; vm: FleetVm }
  | { outcome: 'rejected'; code: 'no_capacity' | 'image_refused' | 'request_id_conflict' | 'vm_tombstoned'; detail: string };

export interface FleetStateDeps {
  hosts: HostShape;
  controls: () => SpawnControls;
  now: () => number;
  random: () => number;
  initial?: FleetSnapshot | null;
  /**
   * Called after every change with a reader of the state: read it (synchronously) when it is to be
   * written. The reader answers the live state, not a copy: copying every VM on every change made
   * each spawn cost O(VMs).
   */
  onChange?: (read: () => FleetSnapshot) => void;
}

export interface FleetState {
  spawn(req: FleetSpawnRequest): SpawnOutcome;
  get(vmId: string): FleetVm | null;
  /**
   * Idempotent; null when the VM was never created, in which case the id is tombstoned (once: a
   * repeat keeps the first tombstone) and a later spawn of it is refused.
   */
  destroy(vmId: string): FleetVm | null;
  list(filter: { tenant_id?: string; status?: FleetVmStatus }): FleetVm[];
  stats(): FleetStats;
  snapshot(): FleetSnapshot;
}

export const BOOT_FAILURE_REASON = 'boot_failed';

export function hostId(index: number): string {
  return `host-${String(index).padStart(3, '0')}`;
}

export function statusAt(vm: StoredVm, now: number): FleetVmStatus {
  if (vm.destroyed_at !== null) return 'destroyed';
  if (now < vm.boot_done_at) return 'booting';
  return vm.boot_fails ? 'failed' : 'running';
}

/** A VM holds host capacity while it boots or runs; a failed boot and a destroy release it. */
function holdsCapacity(vm: StoredVm, now: number): boolean {
  const status = statusAt(vm, now);
  return status === 'booting' || status === 'running';
}

export function toWire(vm: StoredVm, now: number): FleetVm {
  // The boot finished if its deadline passed before the VM was destroyed (or before now).
  const bootFinished = vm.boot_done_at <= (vm.destroyed_at ?? now);
  return {
    vm_id: vm.vm_id,
    tenant_id: vm.tenant_id,
    host_id: vm.host_id,
    status: statusAt(vm, now),
    failure_reason: bootFinished && vm.boot_fails ? BOOT_FAILURE_REASON : null,
    vcpus: vm.vcpus,
    memory_mb: vm.memory_mb,
    storage_gb: vm.storage_gb,
    image: vm.image,
    created_at: new Date(vm.created_at).toISOString(),
    ready_at: bootFinished && !vm.boot_fails ? new Date(vm.boot_done_at).toISOString() : null,
  };
}

function sameSpawn(vm: StoredVm, req: FleetSpawnRequest): boolean {
  return (
    vm.tenant_id === req.tenant_id && vm.vcpus === req.vcpus && vm.memory_mb === req.memory_mb && vm.storage_gb === req.storage_gb && vm.image === req.image
  );
}

function emptyCounts(): CallCounts {
  return { spawn_calls: 0, creates: 0, destroys: 0 };
}

export function createFleetState(deps: FleetStateDeps): FleetState {
  const vms = new Map<string, StoredVm>((deps.initial?.vms ?? []).map((vm) => [vm.vm_id, { ...vm }]));
  const tombstones = new Map<string, StoredTombstone>((deps.initial?.tombstones ?? []).map((t) => [t.vm_id, { ...t }]));
  const stats: FleetStats = structuredClone(deps.initial?.stats ?? { ...emptyCounts(), by_tenant: {} });

  const liveView = (): FleetSnapshot => ({ version: 2, vms: [...vms.values()], tombstones: [...tombstones.values()], stats });

  function snapshot(): FleetSnapshot {
    return structuredClone(liveView());
  }

  function changed(): void {
    deps.onChange?.(liveView);
  }

  function count(tenantId: string, key: keyof CallCounts): void {
    stats[key] += 1;
    const tenant = (stats.by_tenant[tenantId] ??= emptyCounts());
    tenant[key] += 1;
  }

  /** The host with the most free vcpus that fits the request, or null. */
  function place(req: FleetSpawnRequest, now: number): string | null {
    const used = new Map<string, { vcpus: number; memory_mb: number; storage_gb: number }>();
    for (const vm of vms.values()) {
      if (!holdsCapacity(vm, now)) continue;
      const u = used.get(vm.host_id) ?? { vcpus: 0, memory_mb: 0, storage_gb: 0 };
      u.vcpus += vm.vcpus;
      u.memory_mb += vm.memory_mb;
      u.storage_gb += vm.storage_gb;
      used.set(vm.host_id, u);
    }
    let best: { id: string; freeVcpus: number } | null = null;
    for (let i = 0; i < deps.hosts.count; i += 1) {
      const id = hostId(i);
      const u = used.get(id) ?? { vcpus: 0, memory_mb: 0, storage_gb: 0 };
      const free = {
        vcpus: deps.hosts.vcpus - u.vcpus,
        memory_mb: deps.hosts.memory_mb - u.memory_mb,
        storage_gb: deps.hosts.storage_gb - u.storage_gb,
      };
      const fits = free.vcpus >= req.vcpus && free.memory_mb >= req.memory_mb && free.storage_gb >= req.storage_gb;
      if (fits && (best === null || free.vcpus > best.freeVcpus)) best = { id, freeVcpus: free.vcpus };
    }
    return best?.id ?? null;
  }

  function spawn(req: FleetSpawnRequest): SpawnOutcome {
    const now = deps.now();
    count(req.tenant_id, 'spawn_calls');
    try {
      const existing = vms.get(req.request_id);
      // Checked before the body: whatever the create asks for, the id is spent.
      const destroyed = existing !== undefined && existing.destroyed_at !== null;
      if (destroyed || tombstones.has(req.request_id)) {
        const when = destroyed ? 'was destroyed' : 'was destroyed before its create arrived';
        return { outcome: 'rejected', code: 'vm_tombstoned', detail: `VM ${req.request_id} ${when}; its id cannot be created again` };
      }
      if (existing) {
        if (!sameSpawn(existing, req)) {
          return { outcome: 'rejected', code: 'request_id_conflict', detail: `request_id ${req.request_id} was already used for a different VM` };
        }
        return { outcome: 'existing', vm: toWire(existing, now) };
      }
      const controls = deps.controls();
      if (controls.refused_images.includes(req.image)) {
        return { outcome: 'rejected', code: 'image_refused', detail: `image ${JSON.stringify(req.image)} is refused` };
      }
      const host = place(req, now);
      if (host === null) {
        return {
          outcome: 'rejected',
          code: 'no_capacity',
          detail: `no host has ${req.vcpus} vcpus, ${req.memory_mb} MB memory and ${req.storage_gb} GB storage free`,
        };
      }
      const vm: StoredVm = {
        vm_id: req.request_id,
        tenant_id: req.tenant_id,
        host_id: host,
        vcpus: req.vcpus,
        memory_mb: req.memory_mb,
        storage_gb: req.storage_gb,
        image: req.image,
        created_at: now,
        boot_done_at: now + controls.boot_ms,
        boot_fails: deps.random() < controls.failure_rate,
        destroyed_at: null,
      };
      vms.set(vm.vm_id, vm);
      count(req.tenant_id, 'creates');
      return { outcome: 'created', vm: toWire(vm, now) };
    } finally {
      changed();
    }
  }

  function destroy(vmId: string): FleetVm | null {
    const vm = vms.get(vmId);
    const now = deps.now();
    if (!vm) {
      if (!tombstones.has(vmId)) {
        tombstones.set(vmId, { vm_id: vmId, tombstoned_at: now });
        changed();
      }
      return null;
    }
    if (vm.destroyed_at === null) {
      vm.destroyed_at = now;
      count(vm.tenant_id, 'destroys');
      changed();
    }
    return toWire(vm, now);
  }

  return {
    spawn,
    destroy,
    get(vmId) {
      const vm = vms.get(vmId);
      return vm ? toWire(vm, deps.now()) : null;
    },
    list(filter) {
      const now = deps.now();
      return [...vms.values()]
        .filter((vm) => filter.tenant_id === undefined || vm.tenant_id === filter.tenant_id)
        .map((vm) => toWire(vm, now))
        .filter((vm) => filter.status === undefined || vm.status === filter.status);
    },
    stats: () => structuredClone(stats),
    snapshot,
  };
}
