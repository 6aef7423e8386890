import { BENCH_VM, type Tenant } from './api-client';
import { runLoad, type LoadResult } from './load';
import { cpuPerOperation, measureCpu, type CpuUse, type PidSource } from './process-cpu';

export interface AdmissionRun extends LoadResult {
  /** 202 and 429 answers per second: admission decisions, accepted or refused. */
  readonly admissions_per_s: number;
  readonly accepted_per_s: number;
  /** CPU of the stack's parts over the run, per admitted spawn (202); provisioning after the run is not in it. */
  readonly cpu: CpuUse & ReturnType<typeof cpuPerOperation>;
}

/**
 * POST /v1/vms through autocannon at each concurrency level, the tokens of `tenants` used in turn.
 * Each run lasts `durationS`, or sends `amount` requests when given (so a p99 rests on enough
 * samples). Every accepted spawn is a real VM: the worker provisions it in the background while the
 * run goes on, as it would in production.
 */
export async function measureAdmission(options: {
  apiUrl: string;
  tenants: readonly Tenant[];
  concurrencies: readonly number[];
  durationS: number;
  amount?: number;
  cpuGroups: Readonly<Record<string, PidSource>>;
}): Promise<AdmissionRun[]> {
  const tokens = options.tenants.map((t) => t.token);
  const url = `${options.apiUrl}/v1/vms`;
  // Warm-up, not counted: connection pools, JIT, the tenants' workflow caches on the worker.
  await runLoad({ url, method: 'POST', body: BENCH_VM, tokens, connections: 4, amount: Math.max(50, tokens.length * 2) });
  const runs: AdmissionRun[] = [];
  for (const connections of options.concurrencies) {
    const length = options.amount === undefined ? { duration: options.durationS } : { amount: options.amount };
    const { result: run, cpu } = await measureCpu(options.cpuGroups, () => runLoad({ url, method: 'POST', body: BENCH_VM, tokens, connections, ...length }));
    const accepted = run.status_counts['202'] ?? 0;
    const decided = accepted + (run.status_counts['429'] ?? 0);
    runs.push({
      ...run,
      admissions_per_s: Math.round((decided / run.elapsed_s) * 10) / 10,
      accepted_per_s: Math.round((accepted / run.elapsed_s) * 10) / 10,
      cpu: { ...cpu, ...cpuPerOperation(cpu, accepted) },
    });
  }
  return runs;
}
