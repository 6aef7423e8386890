import { BENCH_VM, type Tenant } from './api-client';
import { runLoad, type LoadResult } from './load';

export interface AdmissionRun extends LoadResult {
  /** 202 and 429 answers per second: admission decisions, accepted or refused. */
  readonly admissions_per_s: number;
  readonly accepted_per_s: number;
}

/**
 * POST /v1/vms through autocannon at each concurrency level, the tokens of `tenants` used in turn.
 * Every accepted spawn is a real VM: the worker provisions it in the background while the run goes
 * on, as it would in production.
 */
export async function measureAdmission(options: {
  apiUrl: string;
  tenants: readonly Tenant[];
  concurrencies: readonly number[];
  durationS: number;
}): Promise<AdmissionRun[]> {
  const tokens = options.tenants.map((t) => t.token);
  const url = `${options.apiUrl}/v1/vms`;
  // Warm-up, not counted: connection pools, JIT, the tenants' workflow caches on the worker.
  await runLoad({ url, method: 'POST', body: BENCH_VM, tokens, connections: 4, amount: Math.max(50, tokens.length * 2) });
  const runs: AdmissionRun[] = [];
  for (const connections of options.concurrencies) {
    const run = await runLoad({ url, method: 'POST', body: BENCH_VM, tokens, connections, duration: options.durationS });
    const decided = (run.status_counts['202'] ?? 0) + (run.status_counts['429'] ?? 0);
    runs.push({
      ...run,
      admissions_per_s: Math.round((decided / run.elapsed_s) * 10) / 10,
      accepted_per_s: Math.round(((run.status_counts['202'] ?? 0) / run.elapsed_s) * 10) / 10,
    });
  }
  return runs;
}
