import { condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler } from '@temporalio/workflow';

/** Answers at once: the cheapest update a workflow can serve, the floor our admissions are compared to. */
export const pingUpdate = defineUpdate<number, [number]>('ping');
export const finishSignal = defineSignal('finish');
/** Activities of the floor with one activity: how many ran to completion. */
export const completedQuery = defineQuery<number>('completed');

export interface FloorActivities {
  /** Runs in the bench process: tells the waiting caller that its "boot" ran. */
  floorBoot(key: number): Promise<void>;
}

const { floorBoot } = proxyActivities<FloorActivities>({ startToCloseTimeout: '1 minute' });

export async function floorWorkflow(): Promise<void> {
  let finished = false;
  setHandler(pingUpdate, (n) => n);
  setHandler(finishSignal, () => void (finished = true));
  await condition(() => finished);
}

/**
 * The least a spawn carried to `running` can cost: the update is answered at once (as admission
 * answers before the boot), then the workflow runs one activity to completion (as the boot does).
 */
export async function floorActivityWorkflow(): Promise<void> {
  let finished = false;
  let completed = 0;
  const queued: number[] = [];
  const running: Promise<void>[] = [];
  setHandler(pingUpdate, (n) => {
    queued.push(n);
    return n;
  });
  setHandler(finishSignal, () => void (finished = true));
  setHandler(completedQuery, () => completed);
  for (;;) {
    await condition(() => queued.length > 0 || finished);
    if (queued.length === 0) break;
    for (const key of queued.splice(0)) running.push(floorBoot(key).then(() => void (completed += 1)));
  }
  await Promise.all(running);
}
