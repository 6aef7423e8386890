import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { fleetVms } from '../src/fleet-simulator/sim-client';
import { BENCH_VM, type Tenant } from './api-client';
import { runLoad, type LoadResult } from './load';

/**
 * A burst of spawns far above small quotas (`connections` in flight over tenants with a few VMs
 * each): most answers are 429 quota_exceeded, and none may let a tenant past its max_vms.
 */
export async function runQuotaContention(options: { apiUrl: string; tenants: readonly Tenant[]; connections: number; durationS: number }): Promise<LoadResult> {
  return runLoad({
    url: `${options.apiUrl}/v1/vms`,
    method: 'POST',
    body: BENCH_VM,
    tokens: options.tenants.map((t) => t.token),
    connections: options.connections,
    duration: options.durationS,
  });
}

export interface OvershootResult {
  /** VMs holding quota beyond max_vms, summed over tenants, in Postgres. */
  readonly postgres: number;
  /** VMs booting or running at the fleet beyond the tenant's max_vms, summed over tenants. */
  readonly fleet: number;
  /** VMs still provisioning when the check ran (should be 0: the check waits for them). */
  readonly unsettled: number;
  readonly tenants_checked: number;
}

/** Waits (up to `timeoutMs`) until no VM is provisioning or destroying; returns how many still are. */
export async function waitUntilSettled(ownerUrl: string, timeoutMs: number): Promise<number> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: string }>("select count(*) as n from vms where status in ('requested', 'provisioning', 'destroying')");
      const unsettled = Number(rows[0]!.n);
      if (unsettled === 0 || Date.now() > deadline) return unsettled;
      await sleep(250);
    }
  } finally {
    await client.end();
  }
}

/** Waits (up to `settleMs`) for every VM to settle, then counts quota overshoot in Postgres and at the fleet. */
export async function checkOvershoot(options: { ownerUrl: string; fleetUrl: string; settleMs: number }): Promise<OvershootResult> {
  const unsettled = await waitUntilSettled(options.ownerUrl, options.settleMs);
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  try {
    const { rows: tenants } = await client.query<{ tenant_id: string; max_vms: number; holding: string }>(
      `select t.tenant_id, t.max_vms,
              count(v.vm_id) filter (where v.status in ('provisioning', 'running', 'destroying')) as holding
       from tenants t left join vms v on v.tenant_id = t.tenant_id
       group by t.tenant_id, t.max_vms`,
    );
    let postgres = 0;
    let fleet = 0;
    for (const tenant of tenants) {
      postgres += Math.max(0, Number(tenant.holding) - tenant.max_vms);
      const live = (await fleetVms(options.fleetUrl, tenant.tenant_id)).filter((vm) => vm.status === 'booting' || vm.status === 'running').length;
      fleet += Math.max(0, live - tenant.max_vms);
    }
    return { postgres, fleet, unsettled, tenants_checked: tenants.length };
  } finally {
    await client.end();
  }
}
