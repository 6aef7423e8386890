import pg from 'pg';
import type { Tenant } from './api-client';
import { performance } from 'node:perf_hooks';
import { runLoad, type LoadResult } from './load';
import { summarize, type LatencySummary } from './stats';

export interface ReadsResult {
  readonly vm_records: number;
  readonly list_first_page: LoadResult;
  readonly list_first_page_status_running: LoadResult;
  readonly get_one: LoadResult;
  readonly list_first_page_admin_unlimited: LoadResult;
  readonly list_query_sql: LatencySummary;
}

/**
 * Gives `tenant` `records` VM rows straight in SQL (a mix of destroyed, running and failed, spread
 * over the last days), then times GET /v1/vms (first page, default limit), the same with
 * ?status=running, and GET /v1/vms/:id over a spread of ids, one request at a time.
 */
export async function measureReads(options: {
  apiUrl: string;
  ownerUrl: string;
  tenant: Tenant;
  adminToken: string;
  records: number;
  durationS: number;
}): Promise<ReadsResult> {
  const client = new pg.Client({ connectionString: options.ownerUrl });
  await client.connect();
  let ids: string[];
  try {
    const { rows } = await client.query<{ vm_id: string }>(
      `insert into vms (vm_id, tenant_id, name, vcpus, memory_mb, storage_gb, image, status, failure_reason, created_at, updated_at)
       select gen_random_uuid()::text, $1, null, 1, 512, 5, 'debian-12',
              case when i % 20 = 0 then 'failed' when i % 4 = 0 then 'running' else 'destroyed' end,
              case when i % 20 = 0 then 'boot_failed' end,
              now() - make_interval(secs => i * 30), now() - make_interval(secs => i * 30)
       from generate_series(1, $2::int) as i
       returning vm_id`,
      [options.tenant.tenantId, options.records],
    );
    ids = rows.map((r) => r.vm_id);
    await client.query('analyze vms');
  } finally {
    await client.end();
  }
  const tokens = [options.tenant.token];
  const base = { tokens, connections: 1, duration: options.durationS };
  const list = await runLoad({ ...base, url: `${options.apiUrl}/v1/vms` });
  const listRunning = await runLoad({ ...base, url: `${options.apiUrl}/v1/vms?status=running` });
  // The same page read by the platform admin, whose requests the per-tenant rate limiter does not
  // count: the difference is what the limiter's Postgres upsert (a durable commit) adds to a read.
  const listAdmin = await runLoad({ ...base, tokens: [options.adminToken], url: `${options.apiUrl}/v1/vms?tenant_id=${options.tenant.tenantId}` });
  const sql = await timeListQuery(options.ownerUrl, options.tenant.tenantId, 200);
  const spread = ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / 500)) === 0);
  const getOne = await runLoad({ ...base, url: `${options.apiUrl}/v1/vms`, paths: spread.map((id) => `/v1/vms/${id}`) });
  return {
    vm_records: ids.length,
    list_first_page: list,
    list_first_page_status_running: listRunning,
    get_one: getOne,
    list_first_page_admin_unlimited: listAdmin,
    list_query_sql: sql,
  };
}

/** The list's own query (first page, default limit 50) straight on Postgres: the database's share of a GET /v1/vms. */
async function timeListQuery(ownerUrl: string, tenantId: string, iterations: number): Promise<LatencySummary> {
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    const samples: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const started = performance.now();
      await client.query('select * from vms where tenant_id = $1 order by created_at, vm_id limit 51', [tenantId]);
      samples.push(performance.now() - started);
    }
    return summarize(samples);
  } finally {
    await client.end();
  }
}
