/**
 * `npm run bench` (issue 20): starts the whole system on free ports (bench-stack.ts) and measures,
 * in one run, admission against the right floors:
 *
 * 1. `BENCH_REPS` (≥ 3) repetitions, floors and measured phases alternated (odd repetitions start
 *    with the floors, even ones with the measured phases): the three floors (floor.ts) at
 *    concurrency 1 and 8; admission spaced (no boot in flight) and back to back, one tenant,
 *    concurrency 1; spawns over 50 tenants at concurrency 8 carried to `running`, with the CPU of
 *    every process over exactly those spawns and Postgres's transactions per spawn.
 * 2. Billable actions, marginal per spawn + destroy, at 1 and 8 in flight, from the histories.
 * 3. One tenant at 8 and 32 in flight (its one workflow serves every admission and boot); real
 *    boots: 2 s each, 500 VMs in flight in one tenant.
 * 4. The 100,000-VM tenant against the 10-VM one.
 * 5. Many tenants: `BENCH_MANY_TENANTS` (default 1,000) new tenants, first spawn and second, at 32 in
 *    flight, with the worker's memory.
 * 6. Minutes of steady load (`BENCH_STEADY_S`, default 180; `BENCH_STEADY_RATE` spawns/s, default 10)
 *    over 5 tenants, each VM destroyed 3 s after its 202: per 30 s window, latency, 5xx and the
 *    worker's memory, and the continue-as-new runs it took (steady.ts).
 * 7. Quota contention, overshoot, 5xx, VMs unsettled 90 s after a phase.
 *
 * Writes bench/results/<timestamp>.json and latest.json, and prints the targets table. Sample sizes:
 * `BENCH_SAMPLES` latencies per measurement at concurrency 1 (default 1,000; BENCH_QUICK=1: 100),
 * `BENCH_CARRIED` spawns per 50-tenant measurement (default 1,000; quick: 200). `BENCH_PHASES`
 * (comma-separated: reps, cost, one_tenant, boot, size, many, steady, contention; opt-in: e2e, reads) runs only those.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { measureBackToBackAdmission, measureCarriedSpawns, measureSpacedAdmission, type CarriedRun } from './admission';
import { ApiClient } from './api-client';
import { startBenchStack } from './bench-stack';
import { checkOvershoot, runQuotaContention, waitUntilSettled } from './correctness';
import { measureMarginalCost, type MarginalCost } from './cost';
import { FLOOR_KINDS, startFloor, type FloorKind, type FloorRun } from './floor';
import { measureEndToEnd } from './end-to-end';
import { count5xx } from './load';
import { measureReads } from './reads';
import { idleTransactionsPerSecond, measurePostgresActivity, type PostgresActivity } from './postgres-activity';
import { measureCpu, postgresBackendsOf, processesNamed, treeOf, type CpuUse } from './process-cpu';
import { ratioRow, targetsTable, type TargetRow } from './report';
import { measureManyTenants, measureRealisticBoot } from './scale';
import { measureSteadyLoad } from './steady';
import { machineInfo, ratio, spread, type LatencySummary, type Spread } from './stats';
import { measureTenantSize } from './tenant-size';

const QUICK = process.env.BENCH_QUICK === '1';
const RESULTS_DIR = path.join(__dirname, 'results');
const REPS = Math.max(3, Number(process.env.BENCH_REPS ?? 3));
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? (QUICK ? 100 : 1_000));
const CARRIED = Number(process.env.BENCH_CARRIED ?? (QUICK ? 200 : 1_000));
const MANY_TENANTS = Number(process.env.BENCH_MANY_TENANTS ?? 1_000);
const STEADY_S = Number(process.env.BENCH_STEADY_S ?? (QUICK ? 30 : 180));
const STEADY_RATE = Number(process.env.BENCH_STEADY_RATE ?? 10);
const PHASES = new Set((process.env.BENCH_PHASES ?? 'reps,cost,one_tenant,boot,size,many,steady,contention').split(',').map((p) => p.trim()));
/** Concurrency of the 50-tenant measurement and of the floors' throughput runs. */
const CONCURRENCY = 8;

const log = (message: string) => process.stderr.write(`[bench] ${new Date().toISOString().slice(11, 19)} ${message}\n`);

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  log(`${name}…`);
  const result = await fn();
  log(`${name} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

interface Repetition {
  readonly floors: Record<FloorKind, { alone: FloorRun; loaded: FloorRun }>;
  readonly spaced: LatencySummary;
  readonly back_to_back: LatencySummary;
  readonly carried: CarriedRun & { postgres_run_db_cpu: CpuUse; postgres: PostgresActivity };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const loadAtStart = machineInfo().loadavg;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const stack = await timed('starting the stack', () =>
    startBenchStack({
      pgAdminUrl: process.env.BENCH_PG_ADMIN_URL,
      natsUrl: process.env.BENCH_NATS_URL,
      nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean),
    }),
  );
  // Every process a spawn touches. Postgres and nats-server are shared with the machine's other work
  // (other databases, other engineers' tests): their figures include it; the run's own database
  // backends are read apart (postgres_run_db, not in the total).
  const stackCpu = {
    api: treeOf(stack.pids.api),
    worker: treeOf(stack.pids.worker),
    fleet: treeOf(stack.pids.fleet),
    temporal: treeOf(stack.pids.temporal),
    nats_server: processesNamed('nats-server'),
    postgres_cluster: processesNamed('postgres'),
  };
  const runDbCpu = { postgres_run_db: postgresBackendsOf(stack.ownerUrl, stack.databaseName) };
  // The floors run on the same Temporal server; their worker and client are this process.
  const floorCpu = { temporal: treeOf(stack.pids.temporal), floor_worker_and_client: () => [process.pid] };
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const temporal = new Client({ connection, namespace: stack.namespace });
  const api = new ApiClient(stack.apiUrl);
  const floor = await startFloor({ temporalAddress: stack.temporalAddress, namespace: stack.namespace });
  let unsettled = 0;
  const settle = async () => {
    unsettled = Math.max(unsettled, await timed('waiting for VMs to settle', () => waitUntilSettled(stack.ownerUrl, 90_000)));
  };
  const result: Record<string, unknown> = {};
  /** A phase that fails is recorded with its error, and the run goes on to the next. */
  const phase = async (name: string, run: () => Promise<void>): Promise<void> => {
    if (!PHASES.has(name)) return;
    try {
      await run();
    } catch (error) {
      log(`phase ${name} failed: ${String(error)}`);
      result[`${name}_error`] = String(error);
    }
  };
  const rows: TargetRow[] = [];
  // 5xx of the phases that do not call through `api` (whose client counts its own: api.http5xx).
  const http5xx: number[] = [];
  try {
    if (PHASES.has('reps')) {
      const tenants = await timed('creating tenants', async () => ({
        spaced: (await api.createTenants(stack.adminToken, 'spaced', 1, 100_000))[0]!,
        backToBack: (await api.createTenants(stack.adminToken, 'b2b', 1, 100_000))[0]!,
        fifty: await api.createTenants(stack.adminToken, 'fifty', 50, 100_000),
      }));
      const idlePerS = await timed('idle Postgres transactions', () => idleTransactionsPerSecond(stack.ownerUrl, stack.databaseName));
      const reps: Repetition[] = [];
      for (let rep = 1; rep <= REPS; rep++) {
        const floors = async () => {
          const out = {} as Repetition['floors'];
          for (const kind of FLOOR_KINDS) {
            out[kind] = {
              alone: await timed(`rep ${rep}: floor ${kind}, concurrency 1`, () =>
                floor.measure(kind, { concurrency: 1, workflows: 1, operations: SAMPLES, cpuGroups: floorCpu }),
              ),
              loaded: await timed(`rep ${rep}: floor ${kind}, concurrency ${CONCURRENCY}`, () =>
                floor.measure(kind, { concurrency: CONCURRENCY, workflows: 50, operations: CARRIED, cpuGroups: floorCpu }),
              ),
            };
          }
          return out;
        };
        const measured = async () => {
          await settle();
          const spaced = await timed(`rep ${rep}: admission spaced`, () =>
            measureSpacedAdmission({ api, tenant: tenants.spaced, ownerUrl: stack.ownerUrl, samples: SAMPLES }),
          );
          const backToBack = await timed(`rep ${rep}: admission back to back`, () =>
            measureBackToBackAdmission({ api, tenant: tenants.backToBack, samples: SAMPLES }),
          );
          await settle();
          const pg = await measurePostgresActivity(stack.ownerUrl, stack.databaseName, () =>
            measureCpu(runDbCpu, () =>
              timed(`rep ${rep}: ${CARRIED} spawns over 50 tenants to running`, () =>
                measureCarriedSpawns({ api, tenants: tenants.fifty, spawns: CARRIED, concurrency: CONCURRENCY, ownerUrl: stack.ownerUrl, cpuGroups: stackCpu }),
              ),
            ),
          );
          const carried = pg.result.result;
          return {
            spaced,
            back_to_back: backToBack,
            carried: { ...carried, postgres_run_db_cpu: pg.result.cpu, postgres: pg.per(carried.spawns, carried.bench_statements, idlePerS) },
          };
        };
        if (rep % 2 === 1) {
          const f = await floors();
          reps.push({ floors: f, ...(await measured()) });
        } else {
          const m = await measured();
          reps.push({ floors: await floors(), ...m });
        }
      }
      const of = (pick: (r: Repetition) => number): Spread => spread(reps.map(pick));
      const uws = (r: Repetition) => r.floors.update_with_start.alone.latency;
      const act = (r: Repetition) => r.floors.update_with_start_activity.loaded;
      rows.push(
        ratioRow(
          'admission p50, spaced, ≤ 1.3× the update-with-start floor',
          of((r) => ratio(r.spaced.p50_ms, uws(r).p50_ms)),
          1.3,
          'at_most',
          of((r) => r.spaced.p50_ms),
          of((r) => uws(r).p50_ms),
          ' ms',
        ),
        ratioRow(
          'admission p99, spaced, ≤ 2× the update-with-start floor',
          of((r) => ratio(r.spaced.p99_ms, uws(r).p99_ms)),
          2,
          'at_most',
          of((r) => r.spaced.p99_ms),
          of((r) => uws(r).p99_ms),
          ' ms',
        ),
        ratioRow(
          'admission p50, back to back (the previous VM still booting), vs the update-with-start floor',
          of((r) => ratio(r.back_to_back.p50_ms, uws(r).p50_ms)),
          null,
          'at_most',
          of((r) => r.back_to_back.p50_ms),
          of((r) => uws(r).p50_ms),
          ' ms',
        ),
        ratioRow(
          `CPU per spawn carried to running, all processes, ≤ 1.5× the floor with one activity (concurrency ${CONCURRENCY})`,
          of((r) => ratio(r.carried.cpu.total_per_op_ms, act(r).cpu.total_per_op_ms)),
          1.5,
          'at_most',
          of((r) => r.carried.cpu.total_per_op_ms),
          of((r) => act(r).cpu.total_per_op_ms),
          ' ms',
        ),
        ratioRow(
          `spawns/s to running over 50 tenants ≥ 60% of the floor with one activity, concurrency ${CONCURRENCY}`,
          of((r) => ratio(r.carried.spawns_to_running_per_s, act(r).operations_per_s)),
          0.6,
          'at_least',
          of((r) => r.carried.spawns_to_running_per_s),
          of((r) => act(r).operations_per_s),
          '/s',
        ),
      );
      const tx = of((r) => r.carried.postgres.transactions);
      rows.push({
        target: 'Postgres transactions per spawn carried to running, relay and signer included, ≤ 4',
        figure: `${tx.median} (${tx.min}–${tx.max})`,
        floor: '—',
        met: tx.median <= 4,
      });
      result.repetitions = reps;
      result.idle_transactions_per_s = idlePerS;
    }

    await phase('cost', async () => {
      const costTenants = await api.createTenants(stack.adminToken, 'cost', 2, 100_000);
      const lifecycles = QUICK ? 20 : 50;
      const cost: MarginalCost[] = [];
      for (const [i, concurrency] of [1, 8].entries()) {
        await settle();
        cost.push(
          await timed(`billable actions, ${lifecycles} lifecycles at ${concurrency} in flight`, () =>
            measureMarginalCost({ api, temporal, tenant: costTenants[i]!, lifecycles, concurrency, ownerUrl: stack.ownerUrl }),
          ),
        );
      }
      result.marginal_cost = cost;
      rows.push({
        target: 'marginal billable actions per spawn + destroy = 4.00 (at 1 / 8 in flight; starts and rebuilds apart)',
        figure: cost.map((c) => c.actions_per_lifecycle.toFixed(2)).join(' / '),
        floor: '—',
        met: cost.every((c) => c.actions_per_lifecycle <= 4),
      });
    });

    // One tenant under load: every admission and every boot's completion go through one workflow.
    await phase('one_tenant', async () => {
      await settle();
      const tenant = (await api.createTenants(stack.adminToken, 'one', 1, 100_000))[0]!;
      const runs: CarriedRun[] = [];
      for (const concurrency of [8, 32]) {
        const run = await timed(`one tenant, ${CARRIED} spawns at ${concurrency} in flight`, () =>
          measureCarriedSpawns({ api, tenants: [tenant], spawns: CARRIED, concurrency, ownerUrl: stack.ownerUrl, cpuGroups: stackCpu }),
        );
        runs.push(run);
        await settle();
      }
      result.one_tenant = runs;
    });

    await phase('boot', async () => {
      await settle();
      const tenant = (await api.createTenants(stack.adminToken, 'boot', 1, 100_000))[0]!;
      const boot = await timed('real boots: 2 s each, 500 in flight in one tenant', () =>
        measureRealisticBoot({ api, fleetUrl: stack.fleetUrl, ownerUrl: stack.ownerUrl, tenant, vms: QUICK ? 200 : 500, bootMs: 2_000, concurrency: 32 }),
      );
      result.realistic_boot = boot;
    });

    await phase('size', async () => {
      await settle();
      const spawns = QUICK ? 20 : 50;
      const sizes = await timed('tenant size: 10 and 100,000 VMs', async () => ({
        small: await measureTenantSize({
          api,
          temporal,
          ownerUrl: stack.ownerUrl,
          tenant: (await api.createTenants(stack.adminToken, 'size-s', 1, 1_000))[0]!,
          held: 10,
          spawns,
        }),
        large: await measureTenantSize({
          api,
          temporal,
          ownerUrl: stack.ownerUrl,
          tenant: (await api.createTenants(stack.adminToken, 'size-l', 1, 100_000))[0]!,
          held: 100_000 - spawns - 1,
          spawns,
        }),
      }));
      result.tenant_size = sizes;
      const r = ratio(sizes.large.spawn.p50_ms, sizes.small.spawn.p50_ms);
      rows.push({
        target: 'admission p50 of the 100,000-VM tenant ≤ 1.1× the 10-VM tenant',
        figure: `${r}×: ${sizes.large.spawn.p50_ms} ms (${spawns} spawns, one run)`,
        floor: `${sizes.small.spawn.p50_ms} ms`,
        met: r <= 1.1,
      });
    });

    await phase('many', async () => {
      await settle();
      const many = await timed(`many tenants: ${MANY_TENANTS}, first and second spawn at 32 in flight`, () =>
        measureManyTenants({
          api,
          adminToken: stack.adminToken,
          ownerUrl: stack.ownerUrl,
          count: MANY_TENANTS,
          concurrency: 32,
          worker: treeOf(stack.pids.worker),
        }),
      );
      const fives = count5xx(many.first.status_counts) + count5xx(many.second.status_counts);
      result.many_tenants = many;
      rows.push({
        target: `first spawn of ${MANY_TENANTS} new tenants at 32 in flight: p99 ≤ 2× the warm second spawn, no 5xx`,
        figure: `${many.p99_first_over_second}×: ${many.first.latency.p99_ms} ms, ${fives} 5xx (one run)`,
        floor: `${many.second.latency.p99_ms} ms`,
        met: many.p99_first_over_second <= 2 && fives === 0,
      });
    });

    // Minutes of steady load: a steady population in a few tenants, whose workflows continue as new several times.
    await phase('steady', async () => {
      await settle();
      const steadyTenants = await api.createTenants(stack.adminToken, 'steady', 5, 100_000);
      const steady = await timed(`steady load: ${STEADY_RATE} spawns/s over 5 tenants for ${STEADY_S} s, each destroyed 3 s after its 202`, () =>
        measureSteadyLoad({
          api,
          temporal,
          tenants: steadyTenants,
          spawnsPerS: STEADY_RATE,
          lifetimeS: 3,
          durationS: STEADY_S,
          worker: treeOf(stack.pids.worker),
        }),
      );
      const fives = steady.windows.reduce(
        (sum, w) => sum + count5xx(Object.fromEntries(Object.entries(w.status_counts).map(([k, v]) => [k.split(' ')[1]!, v]))),
        0,
      );
      result.steady = steady;
      const first = steady.windows[0]!;
      const last = steady.windows[steady.windows.length - 1]!;
      rows.push({
        target: `steady load (${STEADY_S} s at ${STEADY_RATE} spawns/s, 5 tenants): spawn p99 of the first and last 30 s, continue-as-new runs per tenant, worker RSS, 5xx (reported)`,
        figure: `${first.spawn.p99_ms} → ${last.spawn.p99_ms} ms; ${steady.runs_per_tenant.min}–${steady.runs_per_tenant.max} runs; ${first.worker_rss_mb} → ${last.worker_rss_mb} MB; ${fives} 5xx; ${steady.late_sends} late sends`,
        floor: '—',
        met: fives === 0 && steady.late_sends === 0,
      });
    });

    // Opt-in (BENCH_PHASES): the earlier issues' phases, 202 → running event over NATS and reads at 10,000 VMs.
    await phase('e2e', async () => {
      await settle();
      const tenants = await api.createTenants(stack.adminToken, 'e2e', 16, 100_000);
      const at = (count: number, concurrency: number) =>
        measureEndToEnd({
          api,
          tenants,
          count,
          concurrency,
          natsUrl: stack.natsUrl,
          subjectPrefix: stack.subjectPrefix,
          ownerUrl: stack.ownerUrl,
          timeoutMs: 90_000,
        });
      result.end_to_end = {
        concurrency_1: await timed('end to end, concurrency 1', () => at(QUICK ? 30 : 200, 1)),
        concurrency_16: await timed('end to end, concurrency 16', () => at(QUICK ? 100 : 400, 16)),
      };
    });
    await phase('reads', async () => {
      await settle();
      const tenant = (await api.createTenants(stack.adminToken, 'reads', 1, 100_000))[0]!;
      result.reads = await timed('reads at 10k VMs', () =>
        measureReads({ apiUrl: stack.apiUrl, ownerUrl: stack.ownerUrl, tenant, adminToken: stack.adminToken, records: 10_000, durationS: QUICK ? 2 : 4 }),
      );
    });

    await phase('contention', async () => {
      const small = await api.createTenants(stack.adminToken, 'small', 10, 5);
      const contention = await timed('quota contention', () =>
        runQuotaContention({ apiUrl: stack.apiUrl, tenants: small, connections: 32, durationS: QUICK ? 2 : 4 }),
      );
      http5xx.push(count5xx(contention.status_counts));
      result.quota_contention = contention;
    });
    const overshoot = await timed('overshoot check', () => checkOvershoot({ ownerUrl: stack.ownerUrl, fleetUrl: stack.fleetUrl, settleMs: 90_000 }));
    const fives = api.http5xx + http5xx.reduce((a, b) => a + b, 0);
    rows.push({
      target: 'overshoot, 5xx, VMs unsettled 90 s after a phase = 0',
      figure: `${overshoot.postgres + overshoot.fleet}, ${fives}, ${Math.max(unsettled, overshoot.unsettled)}`,
      floor: '—',
      met: overshoot.postgres + overshoot.fleet === 0 && fives === 0 && Math.max(unsettled, overshoot.unsettled) === 0,
    });
    result.overshoot = overshoot;

    const finishedAt = new Date();
    const machine = machineInfo();
    const saved = {
      timestamp: startedAt.toISOString(),
      duration_s: Math.round((finishedAt.getTime() - startedAt.getTime()) / 1000),
      quick: QUICK,
      configuration: {
        repetitions: REPS,
        samples_per_latency: SAMPLES,
        carried_spawns: CARRIED,
        concurrency: CONCURRENCY,
        many_tenants: MANY_TENANTS,
        steady_s: STEADY_S,
        steady_spawns_per_s: STEADY_RATE,
        phases: [...PHASES],
      },
      machine: { ...machine, loadavg_at_start: loadAtStart, shared: "the machine is shared with other engineers' test runs: the load averages include them" },
      targets: rows,
      ...result,
    };
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    const json = `${JSON.stringify(saved, null, 2)}\n`;
    writeFileSync(file, json);
    writeFileSync(path.join(RESULTS_DIR, 'latest.json'), json);
    process.stdout.write(
      `\n${targetsTable(rows)}\n\n` +
        `machine: ${machine.cpus} × ${machine.model}, ${machine.memory_gb} GB, Node ${machine.node}, load average ${loadAtStart.join(' ')} at start, ${machine.loadavg.join(' ')} at the end\n` +
        `written ${path.relative(process.cwd(), file)} (and latest.json) in ${saved.duration_s} s\n`,
    );
  } finally {
    await floor.stop();
    await connection.close();
    await timed('stopping the stack', () => stack.stop());
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
