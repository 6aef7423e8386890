import os from 'node:os';

export interface LatencySummary {
  readonly n: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly mean_ms: number;
  readonly max_ms: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** p50/p90/p99, mean and max of latencies in milliseconds, rounded to 0.01 ms. */
export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((acc, v) => acc + v, 0);
  return {
    n: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p90_ms: round(percentile(sorted, 90)),
    p99_ms: round(percentile(sorted, 99)),
    mean_ms: round(sorted.length ? sum / sorted.length : Number.NaN),
    max_ms: round(sorted.length ? sorted[sorted.length - 1]! : Number.NaN),
  };
}

export function ratio(ours: number, floor: number): number {
  return round(ours / floor, 2);
}

export { round };

export interface MachineInfo {
  readonly cpus: number;
  readonly model: string;
  readonly memory_gb: number;
  readonly node: string;
  readonly os: string;
  /** 1/5/15-minute load averages when the run ended: other work on the machine skews every figure. */
  readonly loadavg: readonly number[];
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    model: cpus[0]?.model.trim() ?? 'unknown',
    memory_gb: round(os.totalmem() / 1024 ** 3, 1),
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg: os.loadavg().map((v) => round(v)),
  };
}

/** A figure measured in several repetitions: its median and its spread (lowest, highest), and every value. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly values: readonly number[];
}

/** The median (mean of the two middle values for an even count) and range of `values`; NaN for none. */
export function spread(values: readonly number[]): Spread {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, values };
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median: round(median), min: round(sorted[0]!), max: round(sorted[sorted.length - 1]!), values: values.map((v) => round(v)) };
}

/** "median (min–max)", for the README table and the printed summary. */
export function describeSpread(s: Spread, unit = ''): string {
  return `${s.median}${unit} (${s.min}–${s.max}${unit})`;
}

/** Per-key difference `after - before`, divided by `per`, for counters keyed by name (zero differences left out). */
export function marginal(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>, per: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const delta = (after[key] ?? 0) - (before[key] ?? 0);
    if (delta !== 0) out[key] = round(delta / per);
  }
  return out;
}
