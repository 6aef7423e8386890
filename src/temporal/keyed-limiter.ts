/**
 * At most `limit` concurrent tasks per key, the rest queue in arrival order. Keeps one API process
 * from exceeding Temporal's cap on in-flight updates per workflow during a burst.
 */
export class KeyedLimiter {
  private readonly slots = new Map<string, { running: number; waiting: Array<() => void> }>();

  constructor(private readonly limit: number) {}

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { running: 0, waiting: [] };
      this.slots.set(key, slot);
    }
    if (slot.running >= this.limit) await new Promise<void>((resolve) => slot!.waiting.push(resolve));
    slot.running++;
    try {
      return await task();
    } finally {
      slot.running--;
      const next = slot.waiting.shift();
      if (next) next();
      else if (slot.running === 0) this.slots.delete(key);
    }
  }
}
