import { readdirSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { withDatabase } from '../src/devstack/postgres-admin';

/**
 * CPU time of processes read from /proc (utime + stime of every thread, in clock ticks): a cost per
 * operation that, unlike latency, hardly moves when other work shares the machine.
 */

// sysconf(_SC_CLK_TCK): 100 on every Linux architecture Node runs on.
const MS_PER_TICK = 10;

/** utime + stime of one process in ms, or undefined when it is gone. */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK;
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The process and all its descendants alive now. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const parent = parentOf(pid);
    if (parent === undefined) continue;
    children.set(parent, [...(children.get(parent) ?? []), pid]);
  }
  const tree: number[] = [];
  const visit = (pid: number) => {
    tree.push(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  visit(root);
  return tree;
}

/** The pids whose CPU one group (one part of the system) is charged, looked up at each reading. */
export type PidSource = () => Promise<readonly number[]> | readonly number[];

/** Every process whose command name (/proc/<pid>/comm) is `name`: e.g. all of a Postgres cluster's processes, or nats-server. */
export function processesNamed(name: string): PidSource {
  return () => {
    const pids: number[] = [];
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      try {
        if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name) pids.push(pid);
      } catch {
        // gone meanwhile
      }
    }
    return pids;
  };
}

/** Resident memory of these processes together, in MB (VmRSS), now. */
export function residentMb(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += Number(match?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return Math.round(kb / 102.4) / 10;
}

export const treeOf =
  (pid: number | undefined): PidSource =>
  () =>
    pid === undefined ? [] : processTree(pid);

/**
 * The backends serving one database (the shared cluster also serves other work; its background
 * writers are not charged to anyone). A backend that exits within a phase keeps the CPU of its last
 * reading (measureCpu samples during the phase).
 */
export function postgresBackendsOf(ownerUrl: string, databaseName: string): PidSource {
  return async () => {
    // From the maintenance database: the reading is not one more transaction of the measured one.
    const client = new pg.Client({ connectionString: withDatabase(ownerUrl, 'postgres') });
    await client.connect();
    try {
      const { rows } = await client.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [databaseName]);
      return rows.map((row) => row.pid);
    } finally {
      await client.end();
    }
  };
}

type Reading = Map<string, Map<number, number>>;

async function read(groups: Readonly<Record<string, PidSource>>): Promise<Reading> {
  const reading: Reading = new Map();
  for (const [name, source] of Object.entries(groups)) {
    const perPid = new Map<number, number>();
    for (const pid of await source()) {
      const ms = processCpuMs(pid);
      if (ms !== undefined) perPid.set(pid, ms);
    }
    reading.set(name, perPid);
  }
  return reading;
}

/** CPU ms each group used between two readings; a pid new in the second counts from 0. */
function difference(before: Reading, after: Reading): Record<string, number> {
  const used: Record<string, number> = {};
  for (const [name, perPid] of after) {
    const earlier = before.get(name) ?? new Map<number, number>();
    let sum = 0;
    for (const [pid, ms] of perPid) sum += ms - (earlier.get(pid) ?? 0);
    used[name] = sum;
  }
  return used;
}

export interface CpuUse {
  /** CPU ms per group over the phase. */
  readonly ms: Readonly<Record<string, number>>;
  readonly total_ms: number;
}

/** `into` updated with every pid's newer reading; pids gone since keep their last one. */
function mergeInto(into: Reading, reading: Reading): void {
  for (const [name, perPid] of reading) {
    const merged = into.get(name) ?? new Map<number, number>();
    for (const [pid, ms] of perPid) merged.set(pid, ms);
    into.set(name, merged);
  }
}

/**
 * Runs `phase` and returns its result with the CPU every group used meanwhile. Readings every
 * `sampleMs` during the phase keep the CPU of processes that exit before it ends (Postgres backends
 * of a pool that closes idle connections, short-lived children), up to their last reading.
 */
export async function measureCpu<T>(
  groups: Readonly<Record<string, PidSource>>,
  phase: () => Promise<T>,
  sampleMs = 1_000,
): Promise<{ result: T; cpu: CpuUse }> {
  const before = await read(groups);
  const latest: Reading = new Map();
  mergeInto(latest, before);
  let sampling: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    sampling = sampling.then(async () => mergeInto(latest, await read(groups))).catch(() => undefined);
  }, sampleMs);
  let result: T;
  try {
    result = await phase();
  } finally {
    clearInterval(timer);
    await sampling;
  }
  mergeInto(latest, await read(groups));
  const ms = difference(before, latest);
  return { result, cpu: { ms, total_ms: Object.values(ms).reduce((a, b) => a + b, 0) } };
}

/** CPU ms per operation, per group and in total, rounded to 0.01 ms. */
export function cpuPerOperation(cpu: CpuUse, operations: number): { per_op_ms: Record<string, number>; total_per_op_ms: number } {
  const per = (ms: number) => (operations > 0 ? Math.round((ms / operations) * 100) / 100 : Number.NaN);
  return { per_op_ms: Object.fromEntries(Object.entries(cpu.ms).map(([name, ms]) => [name, per(ms)])), total_per_op_ms: per(cpu.total_ms) };
}
