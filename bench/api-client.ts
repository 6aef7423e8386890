import { randomBytes } from 'node:crypto';
import { createVmTenantClient, requestUnchecked, type VmTenantClient } from '../src/client';

/** The body every benchmark spawn sends. */
export const BENCH_VM = Object.freeze({ vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12' });
const PUBKEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFS6gN+61SWOguzCwIDCVr+rQWxQPArA323Uq2D18csN bench@vm-tenant';

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

export interface Tenant {
  tenantId: string;
  token: string;
  maxVms: number;
}

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

/** Calls to the API through the typed client (src/client), counting the 5xx answers they see (every one breaks a target). */
export class ApiClient {
  http5xx = 0;
  private readonly client: VmTenantClient;

  constructor(readonly baseUrl: string) {
    this.client = createVmTenantClient({ baseUrl });
    this.client.use({
      onResponse: ({ response }) => {
        if (response.status >= 500) this.http5xx++;
      },
    });
  }

  /** For the callers' routes built at run time (`/v1/vms/${id}`). */
  async request(method: string, route: string, token: string, body?: unknown): Promise<ApiAnswer> {
    const { data, error, response } = await requestUnchecked(this.client, method, route, { headers: bearer(token), body });
    return { status: response.status, body: (data ?? error ?? {}) as Record<string, unknown> };
  }

  /** Registers a tenant (rate limit high enough never to interfere) and issues it a tenant-admin token. */
  async createTenant(adminToken: string, label: string, maxVms: number): Promise<Tenant> {
    const tenantId = `b${label}-${randomBytes(4).toString('hex')}`;
    const created = await this.client.POST('/v1/tenants', {
      headers: bearer(adminToken),
      body: { tenant_id: tenantId, display_name: `Bench ${label}`, max_vms: maxVms, storage_quota_gb: 1_000_000, api_rate_limit_rpm: 100_000 },
    });
    if (created.response.status !== 201) throw new Error(`creating tenant ${tenantId}: ${created.response.status} ${JSON.stringify(created.error)}`);
    const issued = await this.client.POST('/v1/tenants/{tenant_id}/tokens', {
      params: { path: { tenant_id: tenantId } },
      headers: bearer(adminToken),
      body: { subject_pubkey: PUBKEY, scope: 'service:tenant-admin', expires_in_seconds: 86_400 },
    });
    if (!issued.data) throw new Error(`issuing a token to ${tenantId}: ${issued.response.status} ${JSON.stringify(issued.error)}`);
    return { tenantId, token: issued.data.token, maxVms };
  }

  async createTenants(adminToken: string, label: string, count: number, maxVms: number): Promise<Tenant[]> {
    return mapLimit(
      Array.from({ length: count }, (_, i) => i),
      8,
      (i) => this.createTenant(adminToken, `${label}${i}`, maxVms),
    );
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}
