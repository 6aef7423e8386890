import { performance } from 'node:perf_hooks';
import { Client, Connection, WithStartWorkflowOperation, type WorkflowHandle } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { finishSignal, pingUpdate, type floorActivityWorkflow, type floorWorkflow } from './floor.workflow';
import { cpuPerOperation, measureCpu, type CpuUse, type PidSource } from './process-cpu';
import { round, summarize, type LatencySummary } from './stats';

/**
 * The three floors (issue 20), each what the cheapest possible version of one of our operations costs
 * Temporal on the same dev server, from this process, with its own worker and task queue:
 * - `update`: executeUpdate on a running workflow whose handler returns at once;
 * - `update_with_start`: executeUpdateWithStart (USE_EXISTING) on it: what the API calls to admit;
 * - `update_with_start_activity`: the same, on a workflow that then runs one activity to completion;
 *   timed to the activity's run (the least any spawn carried to `running` can cost).
 */
export type FloorKind = 'update' | 'update_with_start' | 'update_with_start_activity';
export const FLOOR_KINDS: readonly FloorKind[] = ['update', 'update_with_start', 'update_with_start_activity'];

export interface FloorRun {
  readonly kind: FloorKind;
  readonly concurrency: number;
  readonly workflows: number;
  readonly operations: number;
  readonly operations_per_s: number;
  readonly latency: LatencySummary;
  readonly cpu: CpuUse & ReturnType<typeof cpuPerOperation>;
}

export interface Floor {
  /** `operations` calls (after a warm-up of 20) at `concurrency` over `workflows` fresh workflows. */
  measure(
    kind: FloorKind,
    options: { concurrency: number; workflows: number; operations: number; cpuGroups: Readonly<Record<string, PidSource>> },
  ): Promise<FloorRun>;
  stop(): Promise<void>;
}

/** The floor's worker (in this process) and client; measure() as often as needed, then stop(). */
export async function startFloor(options: { temporalAddress: string; namespace: string }): Promise<Floor> {
  const taskQueue = `bench-floor-${Date.now()}`;
  const booted = new Map<number, () => void>();
  const nativeConnection = await NativeConnection.connect({ address: options.temporalAddress });
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: options.namespace,
    taskQueue,
    workflowsPath: require.resolve('./floor.workflow'),
    activities: {
      floorBoot: async (key: number): Promise<void> => {
        booted.get(key)?.();
        booted.delete(key);
      },
    },
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: options.temporalAddress });
  const client = new Client({ connection, namespace: options.namespace });
  let nextKey = 0;
  let round_ = 0;

  const call = async (kind: FloorKind, handle: WorkflowHandle<typeof floorWorkflow | typeof floorActivityWorkflow>): Promise<void> => {
    const key = nextKey++;
    if (kind === 'update') {
      await handle.executeUpdate(pingUpdate, { args: [key] });
      return;
    }
    const ran = kind === 'update_with_start_activity' ? new Promise<void>((resolve) => booted.set(key, resolve)) : null;
    await client.workflow.executeUpdateWithStart(pingUpdate, {
      args: [key],
      startWorkflowOperation: new WithStartWorkflowOperation(kind === 'update_with_start_activity' ? 'floorActivityWorkflow' : 'floorWorkflow', {
        workflowId: handle.workflowId,
        taskQueue,
        workflowIdConflictPolicy: 'USE_EXISTING',
      }),
    });
    await ran;
  };

  return {
    async measure(kind, { concurrency, workflows, operations, cpuGroups }) {
      round_ += 1;
      const type = kind === 'update_with_start_activity' ? 'floorActivityWorkflow' : 'floorWorkflow';
      // Fresh workflows each time: Temporal caps a run's updates, and no measurement inherits another's history.
      const handles = await Promise.all(
        Array.from({ length: workflows }, (_, i) => client.workflow.start(type, { workflowId: `${taskQueue}-${kind}-${round_}-${i}`, taskQueue })),
      );
      for (let i = 0; i < 20; i++) await call(kind, handles[i % workflows]!); // warm-up: connections, worker cache, JIT
      const samples: number[] = [];
      const started = performance.now();
      let issued = 0;
      const { cpu } = await measureCpu(cpuGroups, async () => {
        await Promise.all(
          Array.from({ length: concurrency }, async () => {
            while (issued < operations) {
              const handle = handles[issued++ % workflows]!;
              const t0 = performance.now();
              await call(kind, handle);
              samples.push(performance.now() - t0);
            }
          }),
        );
        // The activity's completion is one more workflow task: let it run inside the window.
        if (kind === 'update_with_start_activity') await new Promise((resolve) => setTimeout(resolve, 300));
      });
      const elapsedS = (performance.now() - started) / 1000;
      await Promise.all(handles.map((h) => h.signal(finishSignal)));
      return {
        kind,
        concurrency,
        workflows,
        operations: samples.length,
        operations_per_s: round(samples.length / elapsedS, 1),
        latency: summarize(samples),
        cpu: { ...cpu, ...cpuPerOperation(cpu, samples.length) },
      };
    },
    async stop() {
      worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}
