/**
 * `npm run bench`: starts the whole system on free ports (bench-stack.ts), measures the floor,
 * admission, end-to-end time to running, Temporal cost, reads at 10k VMs and correctness under
 * load in one run, writes bench/results/<timestamp>.json and latest.json, and prints a table.
 *
 * BENCH_QUICK=1 shortens every phase (a smoke run of the harness; its figures are not comparable).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { usageQuery } from '../src/shared/tenant-workflow.messages';
import { measureAdmission, type AdmissionRun } from './admission';
import { ApiClient } from './api-client';
import { startBenchStack } from './bench-stack';
import { checkOvershoot, runQuotaContention, waitUntilSettled } from './correctness';
import { measureCost, measureHistorySizes } from './cost';
import { measureEndToEnd } from './end-to-end';
import { chartOfResult } from './chart';
import { measureFloor } from './floor';
import { measurePostgresActivity } from './postgres-activity';
import { cpuPerOperation, measureCpu, postgresBackendsOf, treeOf } from './process-cpu';
import { count5xx, runLoad, type LoadResult } from './load';
import { measureReads } from './reads';
import { measureTenantSize } from './tenant-size';
import { admissionTable, markdownTable, summaryRows, type Headline } from './report';
import { machineInfo, ratio, round } from './stats';
import { BENCH_VM } from './api-client';

const QUICK = process.env.BENCH_QUICK === '1';
const RESULTS_DIR = path.join(__dirname, 'results');
const CONCURRENCIES = [1, 8, 32] as const;
/** Samples behind each latency summary of a full run: a p99 of fewer is a handful of outliers. */
const MIN_SAMPLES = Number(process.env.BENCH_SAMPLES ?? 1_000);
/** BENCH_ADMISSION_ONLY=1: the floor and admission with their CPU, nothing else (profiling, before/after). */
const ADMISSION_ONLY = process.env.BENCH_ADMISSION_ONLY === '1';

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  log(`${name}…`);
  const result = await fn();
  log(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stack = await timed('starting the stack', () =>
    startBenchStack({ pgAdminUrl: process.env.BENCH_PG_ADMIN_URL, natsUrl: process.env.BENCH_NATS_URL, nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) }),
  );
  // What each admitted spawn costs every part of the system, and what a bare update costs Temporal
  // and the floor's own worker and client (this process).
  const stackCpu = {
    api: treeOf(stack.pids.api),
    worker: treeOf(stack.pids.worker),
    postgres: postgresBackendsOf(stack.ownerUrl, stack.databaseName),
    temporal: treeOf(stack.pids.temporal),
    fleet: treeOf(stack.pids.fleet),
  };
  const floorCpu = { temporal: treeOf(stack.pids.temporal), floor_worker_and_client: () => [process.pid] };
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const temporal = new Client({ connection, namespace: stack.namespace });
  const api = new ApiClient(stack.apiUrl);
  const loads: LoadResult[] = [];
  try {
    const floor = await timed('floor', () =>
      measureFloor({
        temporalAddress: stack.temporalAddress,
        namespace: stack.namespace,
        iterations: QUICK ? 50 : MIN_SAMPLES,
        seconds: QUICK ? 2 : ADMISSION_ONLY ? 0 : 5,
        minSamples: QUICK ? 0 : MIN_SAMPLES,
        concurrencies: CONCURRENCIES,
        cpuGroups: floorCpu,
      }),
    );

    const tenants = await timed('creating tenants', async () => ({
      single: await api.createTenants(stack.adminToken, 'one', 1, 10_000),
      fifty: await api.createTenants(stack.adminToken, 'fifty', 50, 10_000),
      small: await api.createTenants(stack.adminToken, 'small', 10, 5),
      cost: (await api.createTenants(stack.adminToken, 'cost', 1, 10_000))[0]!,
      reads: (await api.createTenants(stack.adminToken, 'reads', 1, 10_000))[0]!,
    }));

    const length = { durationS: 2, amount: QUICK ? undefined : MIN_SAMPLES, cpuGroups: stackCpu };
    const admission1 = await timed('admission, 1 tenant', () => measureAdmission({ apiUrl: stack.apiUrl, tenants: tenants.single, concurrencies: CONCURRENCIES, ...length }));
    // Each phase starts from a quiet system: the worker has provisioned every VM accepted before.
    // A VM still provisioning or destroying 90 s after a phase is a stuck lifecycle: reported, target 0.
    let unsettledAfterLoad = 0;
    const settle = async () => {
      unsettledAfterLoad = Math.max(unsettledAfterLoad, await timed('waiting for VMs to settle', () => waitUntilSettled(stack.ownerUrl, 90_000)));
    };
    await settle();
    // The whole phase up to every VM running: the CPU an admitted spawn costs, provisioning included.
    const measured = await measurePostgresActivity(stack.ownerUrl, stack.databaseName, () =>
      measureCpu(stackCpu, async () => {
        const runs = await timed('admission, 50 tenants', () => measureAdmission({ apiUrl: stack.apiUrl, tenants: tenants.fifty, concurrencies: CONCURRENCIES, ...length }));
        await settle();
        return runs;
      }),
    );
    const { result: admission50, cpu: admission50Cpu } = measured.result;
    loads.push(...admission1, ...admission50);
    const admitted50 = admission50.reduce((sum, r) => sum + (r.status_counts['202'] ?? 0), 0);
    const bareUpdates = floor.runs.filter((r) => r.primitive === 'update');
    const floorCpuMs = bareUpdates.reduce((sum, r) => sum + r.cpu.total_ms, 0);
    const cpuCost = {
      admitted_spawns: admitted50,
      /** Transactions and per-table scans and row writes per admitted spawn, provisioning to running included. */
      postgres_per_spawn: measured.per(admitted50),
      per_spawn: cpuPerOperation(admission50Cpu, admitted50),
      floor_per_bare_update_ms: round(floorCpuMs / bareUpdates.reduce((sum, r) => sum + r.updates, 0)),
    };
    if (ADMISSION_ONLY) {
      mkdirSync(RESULTS_DIR, { recursive: true });
      const file = path.join(RESULTS_DIR, `admission-cpu-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
      writeFileSync(file, `${JSON.stringify({ timestamp: startedAt.toISOString(), samples: MIN_SAMPLES, machine: machineInfo(), cpu: { ...cpuCost, admission_50_tenants_through_settled: admission50Cpu }, floor, admission: { one_tenant: admission1, fifty_tenants: admission50 } }, null, 2)}\n`);
      process.stdout.write(`${admissionTable([...admission1, ...admission50].map((r) => ({ ...r, label: '' })))}\n\nCPU ms per admitted spawn: ${JSON.stringify(cpuCost.per_spawn)}; per bare update: ${cpuCost.floor_per_bare_update_ms}\nwritten ${file}\n`);
      return;
    }

    const endToEndAt = (count: number, concurrency: number) =>
      measureEndToEnd({ api, tenants: tenants.fifty, count, concurrency, natsUrl: stack.natsUrl, subjectPrefix: stack.subjectPrefix, ownerUrl: stack.ownerUrl, timeoutMs: 90_000 });
    // One spawn at a time: the latency of the path itself. At concurrency 16 the machine is at its
    // capacity on 2 cores and the figure is mostly queueing.
    const endToEndAlone = await timed('end to end, concurrency 1', () => endToEndAt(QUICK ? 30 : 200, 1));
    const endToEnd = await timed('end to end, concurrency 16', () => endToEndAt(QUICK ? 100 : 400, 16));

    const cost = await timed('cost', () => measureCost({ api, temporal, tenant: tenants.cost, lifecycles: QUICK ? 30 : 100, concurrency: 8, ownerUrl: stack.ownerUrl, temporalMetricsUrl: stack.temporalMetricsUrl }));

    const contention = await timed('quota contention', () => runQuotaContention({ apiUrl: stack.apiUrl, tenants: tenants.small, connections: 32, durationS: QUICK ? 2 : 4 }));
    loads.push(contention);

    // max_history_events must come from a run that continued as new at least once: top the
    // single tenant up with spawns until its workflow has done so.
    let history = await measureHistorySizes(temporal);
    const singleWorkflow = temporal.workflow.getHandle(tenantWorkflowId(tenants.single[0]!.tenantId));
    for (let round = 0; history.continued_as_new_runs === 0 && round < 4; round++) {
      const usage = await singleWorkflow.query(usageQuery).catch(async (error: unknown) => {
        // Say why the workflow cannot answer (a failed workflow task names its cause in the history).
        const events = (await singleWorkflow.fetchHistory().catch(() => ({ events: [] }))).events ?? [];
        const failed = events.filter((e) => e.workflowTaskFailedEventAttributes).pop()?.workflowTaskFailedEventAttributes;
        log(`the single tenant's workflow did not answer its usage query (${String(error)}); last workflow task failure: ${JSON.stringify(failed?.failure?.message ?? null)} ${JSON.stringify(failed?.failure?.stackTrace?.slice(0, 600) ?? '')}`);
        return undefined;
      });
      if (!usage) break;
      const amount = Math.max(100, Math.min(1_000, Math.ceil((1_000 - usage.run_updates) * 1.05)));
      log(`no run has continued as new yet (single tenant at ${usage.run_updates} updates this run): ${amount} more spawns`);
      loads.push(await runLoad({ url: `${stack.apiUrl}/v1/vms`, method: 'POST', body: BENCH_VM, tokens: [tenants.single[0]!.token], connections: 8, amount }));
      await sleep(2_000);
      history = await measureHistorySizes(temporal);
    }

    await settle();
    const reads = await timed('reads at 10k VMs', () => measureReads({ apiUrl: stack.apiUrl, ownerUrl: stack.ownerUrl, tenant: tenants.reads, adminToken: stack.adminToken, records: 10_000, durationS: QUICK ? 2 : 4 }));
    loads.push(reads.list_first_page, reads.list_first_page_status_running, reads.get_one, reads.list_first_page_admin_unlimited);

    const spawnsPerSize = QUICK ? 10 : 50;
    const sizes = await timed('tenant size: 10 and 100,000 VMs', async () => ({
      small: await measureTenantSize({ api, temporal, ownerUrl: stack.ownerUrl, tenant: (await api.createTenants(stack.adminToken, 'size-s', 1, 1_000))[0]!, held: 10, spawns: spawnsPerSize }),
      large: await measureTenantSize({ api, temporal, ownerUrl: stack.ownerUrl, tenant: (await api.createTenants(stack.adminToken, 'size-l', 1, 100_000))[0]!, held: 100_000 - spawnsPerSize - 1, spawns: spawnsPerSize }),
    }));

    const overshoot = await timed('overshoot check', () => checkOvershoot({ ownerUrl: stack.ownerUrl, fleetUrl: stack.fleetUrl, settleMs: 90_000 }));
    history = await measureHistorySizes(temporal);

    const http5xx = api.http5xx + loads.reduce((sum, load) => sum + count5xx(load.status_counts), 0);
    const atOne = admission1.find((r) => r.connections === 1)!;
    const best = (runs: readonly AdmissionRun[]) => Math.max(...runs.map((r) => r.admissions_per_s));
    const headline: Headline = {
      overshoot: overshoot.postgres + overshoot.fleet,
      unsettled_after_load: Math.max(unsettledAfterLoad, overshoot.unsettled),
      http_5xx: http5xx,
      floor_p50_ms: floor.update.p50_ms,
      floor_p99_ms: floor.update.p99_ms,
      floor_uws_p50_ms: floor.update_with_start.p50_ms,
      floor_uws_p99_ms: floor.update_with_start.p99_ms,
      admission_uws_p50_ratio: ratio(atOne.latency.p50_ms, floor.update_with_start.p50_ms),
      admission_uws_p99_ratio: ratio(atOne.latency.p99_ms, floor.update_with_start.p99_ms),
      cpu_ms_per_spawn: cpuCost.per_spawn.total_per_op_ms,
      cpu_ms_per_floor_update: cpuCost.floor_per_bare_update_ms,
      throughput_ratio: Math.max(...admission50.map((r) => ratio(r.admissions_per_s, bareUpdates.find((f) => f.concurrency === r.connections)?.updates_per_s ?? Number.NaN))),
      cpu_ratio: ratio(cpuCost.per_spawn.total_per_op_ms, cpuCost.floor_per_bare_update_ms),
      floor_updates_per_s_50_workflows: Math.max(...floor.throughput.map((t) => t.updates_per_s)),
      admission_p50_ms: atOne.latency.p50_ms,
      admission_p99_ms: atOne.latency.p99_ms,
      admission_p50_ratio: ratio(atOne.latency.p50_ms, floor.update.p50_ms),
      admission_p99_ratio: ratio(atOne.latency.p99_ms, floor.update.p99_ms),
      admissions_per_s_1_tenant: best(admission1),
      admissions_per_s_50_tenants: best(admission50),
      to_running_alone_p50_ms: endToEndAlone.to_running_event.p50_ms,
      to_running_alone_p99_ms: endToEndAlone.to_running_event.p99_ms,
      to_running_p50_ms: endToEnd.to_running_event.p50_ms,
      to_running_p99_ms: endToEnd.to_running_event.p99_ms,
      spawns_to_running_per_s: endToEnd.spawns_to_running_per_s,
      actions_per_lifecycle: cost.actions_per_lifecycle,
      events_per_lifecycle: cost.events_per_lifecycle,
      local_activities_per_admission: cost.local_activities_per_admission,
      max_history_events: history.max_history_events,
      list_p50_ms_10k: reads.list_first_page.latency.p50_ms,
      get_p50_ms_10k: reads.get_one.latency.p50_ms,
      tenant_size: sizes,
    };
    const finishedAt = new Date();
    const result = {
      ...headline,
      timestamp: startedAt.toISOString(),
      duration_s: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      quick: QUICK,
      machine: machineInfo(),
      notes: {
        ratios: 'admission latency at concurrency 1 for one tenant (one request in flight, like the sequential floor) over the floor: executeUpdate on a running workflow whose handler returns at once',
        admissions_per_s: '202 + 429 answers per second at the best of the concurrency levels tried',
        latency: 'client-side, every answer (202, 429 and any other), from autocannon response events',
      },
      floor,
      admission: { one_tenant: admission1, fifty_tenants: admission50 },
      cpu: { ...cpuCost, admission_50_tenants_through_settled: admission50Cpu },
      end_to_end: endToEnd,
      end_to_end_concurrency_1: endToEndAlone,
      cost,
      history,
      reads,
      correctness: { overshoot, quota_contention: contention },
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = `${JSON.stringify(result, null, 2)}\n`;
    writeFileSync(file, json);
    writeFileSync(path.join(RESULTS_DIR, 'latest.json'), json);
    const chart = chartOfResult(result);
    writeFileSync(file.replace(/\.json$/, '.svg'), chart);
    writeFileSync(path.join(RESULTS_DIR, 'latest.svg'), chart);

    const m = result.machine;
    process.stdout.write(
      `\n${markdownTable(summaryRows(headline))}\n\n` +
        `${admissionTable([...admission1, ...admission50].map((r) => ({ ...r, label: '' })))}\n\n` +
        `machine: ${m.cpus} × ${m.model}, ${m.memory_gb} GB, Node ${m.node}, ${m.os}, load average ${m.loadavg.join(' ')}\n` +
        `written ${path.relative(process.cwd(), file)} (and latest.json) in ${result.duration_s} s\n`,
    );
  } finally {
    await connection.close();
    await timed('stopping the stack', () => stack.stop());
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
