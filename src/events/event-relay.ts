import type { Kysely } from 'kysely';
import type { JetStreamClient } from 'nats';
import pg from 'pg';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import type { AuditEventType } from '../shared/audit-event-types';
import { committedSeqHorizon } from '../ledger/commit-horizon';
import { subjectFor } from '../shared/event-subjects';
import { toLifecycleEvent } from './event-payload';

export interface EventRelayOptions {
  db: Kysely<Database>;
  /** A direct connection string: the relay holds one session for LISTEN and its leadership lock. */
  databaseUrl: string;
  js: JetStreamClient;
  subjectPrefix: string;
  log: Logger;
  batchSize?: number;
  pollMs?: number;
  onPublished?: (count: number) => void;
  onRetry?: () => void;
}

// One cursor and one leader per destination (subject prefix): relays of deployments, or test stacks,
// that share a database but publish to different streams neither steal each other's events nor wait on
// each other. With one constant cursor, a relay for prefix A would advance past events B never got.
export const relayCursorName = (subjectPrefix: string): string => `nats:${subjectPrefix}`;
const RELAY_LOCK_CLASS = 7_221_002;

/**
 * Publishes every ledger entry to NATS JetStream, in seq order, with Nats-Msg-Id = event id, reading
 * only up to the commit horizon (see commit-horizon.ts), so an entry that commits after a higher
 * seq is still published, before it.
 * The ledger is the outbox: an event is recorded in the same transaction as the change it
 * describes, so no event is lost when NATS is down; the relay retries until it lands, and a crash
 * between publish and cursor update republishes an event that JetStream then deduplicates.
 * One relay leads at a time (a session advisory lock); the others stand by.
 */
export class EventRelay {
  private stopped = false;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private listener: pg.Client | null = null;
  /** The cursor while this relay leads: only the leader moves it, so it is read once per leadership. */
  private cursor: string | null = null;

  constructor(private readonly options: EventRelayOptions) {}

  start(): void {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.lead();
      } catch (error) {
        if (this.stopped) break;
        this.options.log.warn({ err: error }, 'event relay interrupted; retrying');
        this.options.onRetry?.();
        await this.sleep(1000);
      } finally {
        await this.listener?.end().catch(() => undefined);
        this.listener = null;
      }
    }
  }

  private async lead(): Promise<void> {
    const listener = new pg.Client({ connectionString: this.options.databaseUrl, application_name: 'vm-tenant-event-relay' });
    listener.on('error', () => undefined);
    this.listener = listener;
    await listener.connect();
    while (!this.stopped) {
      const { rows } = await listener.query<{ locked: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as locked', [RELAY_LOCK_CLASS, this.options.subjectPrefix]);
      if (rows[0]?.locked) break;
      await this.sleep(2000);
    }
    this.cursor = null;
    listener.on('notification', () => this.wake?.());
    await listener.query('listen audit_events');
    while (!this.stopped) {
      const published = await this.publishBatch();
      if (published === 0) await this.sleep(this.options.pollMs ?? 1000);
    }
  }

  private async publishBatch(): Promise<number> {
    const { db, js } = this.options;
    this.cursor ??= (await db.selectFrom('event_relay_cursor').select('last_seq').where('name', '=', relayCursorName(this.options.subjectPrefix)).executeTakeFirst())?.last_seq ?? '0';
    const after = this.cursor;
    // Only up to the commit horizon: an entry whose seq was drawn before a higher one's may commit
    // after it, and the cursor must not pass it first.
    const horizon = await committedSeqHorizon(db);
    if (horizon === null || BigInt(horizon) <= BigInt(after)) return 0;
    const rows = await db.selectFrom('audit_events').selectAll().where('seq', '>', after).where('seq', '<=', horizon).orderBy('seq').limit(this.options.batchSize ?? 200).execute();
    if (rows.length === 0) return 0;
    // Pipelined: all are sent in ledger order on one connection (which NATS keeps in order), then
    // every acknowledgement is awaited before the cursor moves.
    await Promise.all(
      rows.map((row) => js.publish(subjectFor(this.options.subjectPrefix, row.event_type as AuditEventType, row.tenant_id), JSON.stringify(toLifecycleEvent(row)), { msgID: row.event_id, timeout: 5000 })),
    );
    const last = rows[rows.length - 1]!.seq;
    await db
      .insertInto('event_relay_cursor')
      .values({ name: relayCursorName(this.options.subjectPrefix), last_seq: last, updated_at: new Date() })
      .onConflict((oc) => oc.column('name').doUpdateSet({ last_seq: last, updated_at: new Date() }))
      .execute();
    this.cursor = last;
    this.options.onPublished?.(rows.length);
    return rows.length;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}
