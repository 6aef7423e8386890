import type { FleetVm } from '../fleet/fleet-types';
import type { CallCounts, FleetStats } from './fleet-state';
import type { SimControlsPatch } from './sim-controls';

/** What tests and the benchmark ask the fleet simulator at `fleetUrl`; a call it does not answer with 2xx (404 for fleetVm) throws. */
async function answer<T>(response: Response): Promise<T> {
  if (!response.ok) throw new Error(`fleet simulator: ${response.url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}
const fleetJson = async <T>(url: string, init?: RequestInit) => answer<T>(await fetch(url, init));

/** Turns the simulator's run-time knobs (latency, boot time, faults, …); fields left out keep their value. */
export async function configureFleet(fleetUrl: string, patch: SimControlsPatch): Promise<void> {
  await fleetJson(`${fleetUrl}/_sim/config`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) });
}

/** How often the fleet was asked to spawn, create and destroy, overall and per tenant. */
export const fleetStats = (fleetUrl: string) => fleetJson<FleetStats>(`${fleetUrl}/_sim/stats`);

export const fleetTenantStats = async (fleetUrl: string, tenantId: string): Promise<CallCounts> =>
  (await fleetStats(fleetUrl)).by_tenant[tenantId] ?? { spawn_calls: 0, creates: 0, destroys: 0 };

/** The VMs the fleet holds, of one tenant or all. */
export const fleetVms = async (fleetUrl: string, tenantId?: string) =>
  (await fleetJson<{ items: FleetVm[] }>(`${fleetUrl}/v1/vms${tenantId === undefined ? '' : `?tenant_id=${encodeURIComponent(tenantId)}`}`)).items;

export async function fleetVm(fleetUrl: string, vmId: string): Promise<FleetVm | null> {
  const response = await fetch(`${fleetUrl}/v1/vms/${encodeURIComponent(vmId)}`);
  return response.status === 404 ? null : answer<FleetVm>(response);
}
