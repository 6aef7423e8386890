import { performance } from 'node:perf_hooks';
import { Client, Connection, WithStartWorkflowOperation, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { finishSignal, pingUpdate, type floorWorkflow } from './floor.workflow';
import { cpuPerOperation, measureCpu, type CpuUse, type PidSource } from './process-cpu';
import { round, summarize, type LatencySummary } from './stats';

export type FloorPrimitive = 'update' | 'update_with_start';

export interface FloorRun {
  readonly primitive: FloorPrimitive;
  readonly concurrency: number;
  readonly updates: number;
  readonly updates_per_s: number;
  readonly latency: LatencySummary;
  readonly cpu: CpuUse & ReturnType<typeof cpuPerOperation>;
}

export interface FloorResult {
  /** executeUpdate on a running workflow handle, one at a time. */
  readonly update: LatencySummary;
  /** executeUpdateWithStart (USE_EXISTING) on the same running workflow: what our API calls. */
  readonly update_with_start: LatencySummary;
  /** Both primitives over 50 workflows at each concurrency: Temporal's own ceiling here. */
  readonly runs: readonly FloorRun[];
  /** Bare updates per second over 50 workflows at each concurrency (kept from earlier results). */
  readonly throughput: ReadonlyArray<{ concurrency: number; updates_per_s: number }>;
}

const THROUGHPUT_WORKFLOWS = 50;

/**
 * The floor: Temporal update round-trips against a workflow whose handler returns at once, served by
 * its own worker and task queue on the same dev server, from this process. Each run lasts at least
 * `seconds` and `minSamples` calls, so its p99 rests on enough samples. `cpuGroups` are read around
 * every run: the Temporal server and this process (the floor's worker and client).
 */
export async function measureFloor(options: {
  temporalAddress: string;
  namespace: string;
  iterations: number;
  seconds: number;
  minSamples: number;
  concurrencies: readonly number[];
  cpuGroups: Readonly<Record<string, PidSource>>;
}): Promise<FloorResult> {
  const taskQueue = `bench-floor-${Date.now()}`;
  const nativeConnection = await NativeConnection.connect({ address: options.temporalAddress });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: options.namespace,
    taskQueue,
    workflowsPath: require.resolve('./floor.workflow'),
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection, namespace: options.namespace });
  const workflowId = `bench-floor-${Date.now()}`;
  const call = (primitive: FloorPrimitive, handle: WorkflowHandle<typeof floorWorkflow>, k: number) =>
    primitive === 'update'
      ? handle.executeUpdate(pingUpdate, { args: [k] })
      : client.workflow.executeUpdateWithStart(pingUpdate, {
          args: [k],
          startWorkflowOperation: new WithStartWorkflowOperation<typeof floorWorkflow>('floorWorkflow', {
            workflowId: handle.workflowId,
            taskQueue,
            workflowIdConflictPolicy: 'USE_EXISTING',
          }),
        });
  try {
    // One workflow per primitive: Temporal caps a run at 2,000 updates in all, and a full run sends
    // each primitive more than 1,000.
    const handles = {
      update: await client.workflow.start<typeof floorWorkflow>('floorWorkflow', { workflowId, taskQueue }),
      update_with_start: await client.workflow.start<typeof floorWorkflow>('floorWorkflow', { workflowId: `${workflowId}-with-start`, taskQueue }),
    };
    const time = async (primitive: FloorPrimitive): Promise<number[]> => {
      const handle = handles[primitive];
      for (let i = 0; i < 20; i++) await call(primitive, handle, i); // warm-up: connections, worker cache, JIT
      const samples: number[] = [];
      for (let i = 0; i < options.iterations; i++) {
        const started = performance.now();
        await call(primitive, handle, i);
        samples.push(performance.now() - started);
      }
      return samples;
    };
    const update = await time('update');
    const updateWithStart = await time('update_with_start');
    for (const handle of Object.values(handles)) {
      await handle.signal(finishSignal);
      await handle.result();
    }

    const many = await Promise.all(
      Array.from({ length: THROUGHPUT_WORKFLOWS }, (_, i) => client.workflow.start<typeof floorWorkflow>('floorWorkflow', { workflowId: `${workflowId}-${i}`, taskQueue })),
    );
    const runs: FloorRun[] = [];
    for (const primitive of ['update', 'update_with_start'] as const) {
      for (const concurrency of options.concurrencies) {
        const samples: number[] = [];
        const started = performance.now();
        const until = started + options.seconds * 1000;
        const { cpu } = await measureCpu(options.cpuGroups, () =>
          Promise.all(
            Array.from({ length: concurrency }, async (_, lane) => {
              for (let k = lane; performance.now() < until || samples.length < options.minSamples; k += concurrency) {
                const t0 = performance.now();
                await call(primitive, many[k % THROUGHPUT_WORKFLOWS]!, k);
                samples.push(performance.now() - t0);
              }
            }),
          ),
        );
        const elapsedS = (performance.now() - started) / 1000;
        runs.push({
          primitive,
          concurrency,
          updates: samples.length,
          updates_per_s: round(samples.length / elapsedS, 1),
          latency: summarize(samples),
          cpu: { ...cpu, ...cpuPerOperation(cpu, samples.length) },
        });
      }
    }
    await Promise.all(many.map((h) => h.signal(finishSignal)));
    const throughput = runs.filter((r) => r.primitive === 'update').map((r) => ({ concurrency: r.concurrency, updates_per_s: r.updates_per_s }));
    return { update: summarize(update), update_with_start: summarize(updateWithStart), runs, throughput };
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
  }
}
