import { condition, defineSignal, defineUpdate, setHandler } from '@temporalio/workflow';

/** Answers at once: the cheapest update a workflow can serve, the floor our admissions are compared to. */
export const pingUpdate = defineUpdate<number, [number]>('ping');
export const finishSignal = defineSignal('finish');

export async function floorWorkflow(): Promise<void> {
  let finished = false;
  setHandler(pingUpdate, (n) => n);
  setHandler(finishSignal, () => void (finished = true));
  await condition(() => finished);
}
