import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { FleetSnapshot } from './fleet-state';

/**
 * Keeps the simulator's state in one JSON file. Writes are synchronous and atomic (temp file,
 * fsync, rename), so a change is on disk before the HTTP answer that reports it, and a crash leaves
 * either the old file or the new one, never half of one.
 */
export interface StateStore {
  readonly filePath: string;
  /** null when there is no file yet. Throws when the file exists but is not a fleet state. */
  load(): FleetSnapshot | null;
  save(snapshot: FleetSnapshot): void;
}

const counts = z.object({ spawn_calls: z.int().min(0), creates: z.int().min(0), destroys: z.int().min(0) });

const storedVms = z.array(
  z.object({
    vm_id: z.string(),
    tenant_id: z.string(),
    host_id: z.string(),
    vcpus: z.number(),
    memory_mb: z.number(),
    storage_gb: z.number(),
    image: z.string(),
    created_at: z.number(),
    boot_done_at: z.number(),
    boot_fails: z.boolean(),
    destroyed_at: z.number().nullable(),
  }),
);
const stats = counts.extend({ by_tenant: z.record(z.string(), counts) });

/**
 * Version 2 added the tombstones. The version was raised (rather than the field made optional) so
 * that an older simulator refuses a newer file instead of loading it and silently forgetting them.
 */
const SnapshotV2Schema = z.object({
  version: z.literal(2),
  vms: storedVms,
  tombstones: z.array(z.object({ vm_id: z.string(), tombstoned_at: z.number() })),
  stats,
});

/**
 * Written before tombstones existed: its destroyed VMs are still tombstoned by their records, but a
 * destroy of an unseen id was forgotten then, so it reads as having no bare tombstones.
 */
const SnapshotV1Schema = z
  .object({ version: z.literal(1), vms: storedVms, stats })
  .transform((v1): FleetSnapshot => ({ version: 2, vms: v1.vms, tombstones: [], stats: v1.stats }));

const SnapshotSchema: z.ZodType<FleetSnapshot> = z.discriminatedUnion('version', [SnapshotV2Schema, SnapshotV1Schema]);

export interface CoalescingSaver {
  /** `read` is called when the state is written: at once with no delay, else at the flush. */
  save(read: () => FleetSnapshot): void;
  /** Writes the pending snapshot, if any, now. */
  flush(): void;
}

/**
 * Saves through `store`, at most once per `delayMs`: a change is written `delayMs` after the first
 * change since the last write, with every change made meanwhile. With 0 every change is written
 * before save() returns, as the store does alone. With a delay, a graceful stop still writes
 * everything (flush), but a crash loses the changes of the last `delayMs` at most. Each write is of
 * the whole state (about 240 bytes a VM, destroyed ones included, and about 70 a bare tombstone) with an fsync, so writing on every
 * change costs the simulator O(VMs) per change.
 */
export function coalescingSaver(store: StateStore, delayMs: number): CoalescingSaver {
  let pending: (() => FleetSnapshot) | null = null;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (pending === null) return;
    const read = pending;
    pending = null;
    store.save(read());
  };
  return {
    save(read) {
      if (delayMs === 0) return store.save(read());
      pending = read;
      timer ??= setTimeout(flush, delayMs).unref();
    },
    flush,
  };
}

export function createStateStore(filePath: string): StateStore {
  return {
    filePath,

    load() {
      let text: string;
      try {
        text = fs.readFileSync(filePath, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw err;
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (cause) {
        throw new Error(`fleet state file ${filePath} is not valid JSON`, { cause });
      }
      const parsed = SnapshotSchema.safeParse(json);
      if (!parsed.success) throw new Error(`fleet state file ${filePath} is not a fleet state:\n${z.prettifyError(parsed.error)}`);
      return parsed.data;
    },

    save(snapshot) {
      fs.mkdirSync(path.dirname(filePath), { recursive: true });
      const temp = `${filePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      try {
        const fd = fs.openSync(temp, 'w');
        try {
          fs.writeFileSync(fd, JSON.stringify(snapshot));
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.renameSync(temp, filePath);
      } catch (err) {
        fs.rmSync(temp, { force: true });
        throw err;
      }
    },
  };
}
