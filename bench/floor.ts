import { performance } from 'node:perf_hooks';
import { Client, Connection, WithStartWorkflowOperation } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { finishSignal, pingUpdate, type floorWorkflow } from './floor.workflow';
import { summarize, type LatencySummary } from './stats';

export interface FloorResult {
  /** executeUpdate on a running workflow handle, one at a time. */
  readonly update: LatencySummary;
  /** executeUpdateWithStart (USE_EXISTING) on the same running workflow: what our API calls. */
  readonly update_with_start: LatencySummary;
  /** Bare updates per second over 50 workflows at each concurrency: Temporal's own ceiling here. */
  readonly throughput: ReadonlyArray<{ concurrency: number; updates_per_s: number }>;
}

const THROUGHPUT_WORKFLOWS = 50;
const THROUGHPUT_CONCURRENCY = [1, 8, 32];

/**
 * The floor: bare Temporal update round-trips against a workflow whose handler returns at once,
 * served by its own worker and task queue on the same dev server, from this process, sequentially.
 */
export async function measureFloor(options: { temporalAddress: string; namespace: string; iterations: number; throughputSeconds: number }): Promise<FloorResult> {
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
  try {
    const handle = await client.workflow.start<typeof floorWorkflow>('floorWorkflow', { workflowId, taskQueue });
    const time = async (call: (i: number) => Promise<unknown>): Promise<number[]> => {
      for (let i = 0; i < 20; i++) await call(i); // warm-up: connections, worker cache, JIT
      const samples: number[] = [];
      for (let i = 0; i < options.iterations; i++) {
        const started = performance.now();
        await call(i);
        samples.push(performance.now() - started);
      }
      return samples;
    };
    const update = await time((i) => handle.executeUpdate(pingUpdate, { args: [i] }));
    const updateWithStart = await time((i) =>
      client.workflow.executeUpdateWithStart(pingUpdate, {
        args: [i],
        startWorkflowOperation: new WithStartWorkflowOperation<typeof floorWorkflow>('floorWorkflow', {
          workflowId,
          taskQueue,
          workflowIdConflictPolicy: 'USE_EXISTING',
        }),
      }),
    );
    await handle.signal(finishSignal);
    await handle.result();

    const many = await Promise.all(
      Array.from({ length: THROUGHPUT_WORKFLOWS }, (_, i) => client.workflow.start<typeof floorWorkflow>('floorWorkflow', { workflowId: `${workflowId}-${i}`, taskQueue })),
    );
    const throughput = [];
    for (const concurrency of THROUGHPUT_CONCURRENCY) {
      let done = 0;
      const until = performance.now() + options.throughputSeconds * 1000;
      await Promise.all(
        Array.from({ length: concurrency }, async (_, lane) => {
          for (let k = lane; performance.now() < until; k += concurrency) {
            await many[k % THROUGHPUT_WORKFLOWS]!.executeUpdate(pingUpdate, { args: [k] });
            done++;
          }
        }),
      );
      throughput.push({ concurrency, updates_per_s: Math.round((done / options.throughputSeconds) * 10) / 10 });
    }
    await Promise.all(many.map((h) => h.signal(finishSignal)));
    return { update: summarize(update), update_with_start: summarize(updateWithStart), throughput };
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
  }
}
