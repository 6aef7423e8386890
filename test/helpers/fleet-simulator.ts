import type { FleetVm } from '../../src/fleet/fleet-types';
import type { CallCounts, FleetStats } from '../../src/fleet-simulator/fleet-state';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';

/**
 * What tests ask the fleet simulator, by URL: its run-time knobs (/_sim), its call counts and the
 * VMs it holds. Each call fails loudly when the simulator does not answer as expected.
 */
async function fleetJson<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`fleet simulator: ${init?.method ?? 'GET'} ${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** Turns the simulator's knobs (latency, boot time, faults, …); fields left out keep their value. */
export async function configureFleet(fleetUrl: string, patch: SimControlsPatch): Promise<void> {
  await fleetJson(`${fleetUrl}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
}

/** How often the fleet was asked to spawn, create and destroy, overall and per tenant. */
export function fleetStats(fleetUrl: string): Promise<FleetStats> {
  return fleetJson(`${fleetUrl}/_sim/stats`);
}

export async function fleetTenantStats(fleetUrl: string, tenantId: string): Promise<CallCounts> {
  return (await fleetStats(fleetUrl)).by_tenant[tenantId] ?? { spawn_calls: 0, creates: 0, destroys: 0 };
}

/** The VMs the fleet holds, of one tenant or all. */
export async function fleetVms(fleetUrl: string, tenantId?: string): Promise<FleetVm[]> {
  const query = tenantId === undefined ? '' : `?tenant_id=${encodeURIComponent(tenantId)}`;
  return (await fleetJson<{ items: FleetVm[] }>(`${fleetUrl}/v1/vms${query}`)).items;
}

/** One VM as the fleet holds it, or null when it has none by that id. */
export async function fleetVm(fleetUrl: string, vmId: string): Promise<FleetVm | null> {
  const response = await fetch(`${fleetUrl}/v1/vms/${encodeURIComponent(vmId)}`);
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`fleet simulator: GET /v1/vms/${vmId} answered ${response.status}`);
  return (await response.json()) as FleetVm;
}
