import type { Kysely } from 'kysely';
import type { JetStreamClient } from 'nats';
import type pg from 'pg';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import type { AuditEventType } from '../shared/audit-event-types';
import { readLedgerUpToHorizon } from '../ledger/commit-horizon';
import { HorizonStarvationWatch } from '../ledger/horizon-starvation';
import { subjectFor } from '../shared/event-subjects';
import { toLifecycleEvent } from './event-payload';
import { readEntryTraces } from '../ledger/entry-trace.repository';
import { publishEntryEvent } from './traced-publish';
import {
  confirmLead,
  confirmLeadAndMoveCursor,
  moveCursor,
  openLeaderSession,
  RelayFencedError,
  takeLead,
  tryLeadershipLock,
  type Lead,
} from './relay-leadership';

/**
 * A batch published and the cursor move it needs. `readUpTo`: the horizon when the batch held every
 * entry up to it (null otherwise).
 */
interface PublishedBatch {
  epoch: string;
  /** The cursor the batch was read after, and where it is to move. */
  after: string;
  to: string;
  published: number;
  readUpTo: string | null;
}

/** Test-only: a named step of the relay, where a test may hold it as if the process were paused there. */
export type RelayStep = 'leading' | 'before-publish' | 'before-cursor-move';
export interface RelayStepContext {
  /** The epoch of this leadership, and the cursor as it last moved it. */
  epoch: string;
  cursor: string;
  /** At 'before-publish' and 'before-cursor-move': where the cursor is to move after this batch. */
  to?: string;
}

export interface EventRelayOptions {
  db: Kysely<Database>;
  /** A direct connection string: the relay holds one session for LISTEN and its leadership lock. */
  databaseUrl: string;
  js: JetStreamClient;
  subjectPrefix: string;
  log: Logger;
  batchSize?: number;
  /** With no notification, how often an idle leader looks for entries (default 1 s): one statement (see lead()). */
  pollMs?: number;
  /**
   * How long after a notification the relay reads the ledger (default 40 ms): the entries that commit
   * meanwhile go out in the same batch, instead of one round (about five statements) per entry.
   */
  debounceMs?: number;
  /** How often a standby tries to take the lead (default 2 s). */
  standbyPollMs?: number;
  /**
   * Postgres ends the leader session after this long without a statement (idle_session_timeout;
   * default 15 s), so a paused leader loses the lock and a standby takes over. It must exceed the
   * longest round of a live leader: pollMs, the commit-horizon wait (up to 2 s) and a publish (up
   * to 5 s); a shorter one is safe (the leader is fenced) but hands over needlessly.
   */
  sessionIdleTimeoutMs?: number;
  onPublished?: (count: number) => void;
  onRetry?: () => void;
  /** This relay lost the lead (another took it, or the cursor moved past it); it stands by again. */
  onFenced?: (error: RelayFencedError) => void;
  /** Test-only fault point: awaited at each named step. */
  faultPoint?: (step: RelayStep, context: RelayStepContext) => Promise<void> | void;
}

// One cursor and one leader per destination (subject prefix): relays of deployments, or test stacks,
// that share a database but publish to different streams neither steal each other's events nor wait on
// each other. With one constant cursor, a relay for prefix A would advance past events B never got.
export const relayCursorName = (subjectPrefix: string): string => `nats:${subjectPrefix}`;

/**
 * Publishes every ledger entry to NATS JetStream, in seq order, with Nats-Msg-Id = event id, reading
 * only up to the commit horizon (see commit-horizon.ts), so an entry that commits after a higher
 * seq is still published, before it.
 * The ledger is the outbox: an event is recorded in the same transaction as the change it
 * describes, so no event is lost when NATS is down; the relay retries until it lands, and a crash
 * between publish and cursor update republishes an event that JetStream then deduplicates.
 * One relay leads at a time (a session advisory lock); the others stand by. The cursor is fenced:
 * a relay moves it only while its leadership's epoch holds the cursor row (relay-leadership.ts), so
 * one that lost the lock (its session ended, or it was paused) never moves it, back or forward.
 */
export class EventRelay {
  private stopped = false;
  /** Ends the current pause at once (stop). */
  private wake: (() => void) | null = null;
  /** A notification: ends the current idle pause after the debounce. */
  private onNotification: (() => void) | null = null;
  /** Between taking the lead and leaving it (fenced, failed or stopped). */
  private leadingNow = false;
  /** A notification arrived since the current round started. */
  private notified = false;
  private loop: Promise<void> | null = null;
  private session: pg.Client | null = null;
  /** Warns when the commit horizon stays out of reach, so a starved relay is not silent. */
  private readonly starvation: HorizonStarvationWatch;

  constructor(private readonly options: EventRelayOptions) {
    this.starvation = new HorizonStarvationWatch({ db: options.db, log: options.log, reader: 'event relay', warnAfterMs: RELAY_STARVED_WARN_MS });
    const idle = options.sessionIdleTimeoutMs ?? DEFAULT_SESSION_IDLE_TIMEOUT_MS;
    if (idle <= (options.pollMs ?? DEFAULT_POLL_MS))
      throw new Error(`event relay: sessionIdleTimeoutMs (${idle}) must exceed pollMs, or a live leader loses its session`);
  }

  /** Leading: this relay holds the lead and publishes (src/ledger/ledger-writer.ts wakes it in process meanwhile). */
  get leading(): boolean {
    return this.leadingNow;
  }

  /** An append of this process committed: as a notification would, without costing Postgres one. */
  nudge(): void {
    this.notified = true;
    this.onNotification?.();
  }

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
        if (error instanceof RelayFencedError) {
          this.options.log.warn({ err: error }, 'event relay lost the lead; standing by');
          this.options.onFenced?.(error);
        } else {
          this.options.log.warn({ err: error }, 'event relay interrupted; retrying');
          this.options.onRetry?.();
        }
      } finally {
        this.leadingNow = false;
        // Ending the session releases the lock, if it still held it: before the pause, so that a
        // relay that no longer leads does not keep the others waiting.
        await this.session?.end().catch(() => undefined);
        this.session = null;
      }
      if (!this.stopped) await this.sleep(1000);
    }
  }

  private async lead(): Promise<void> {
    const { db, subjectPrefix, log } = this.options;
    const session = await openLeaderSession(this.options.databaseUrl, this.options.sessionIdleTimeoutMs ?? DEFAULT_SESSION_IDLE_TIMEOUT_MS);
    this.session = session;
    while (!this.stopped && !(await tryLeadershipLock(session, subjectPrefix))) await this.sleep(this.options.standbyPollMs ?? 2000);
    if (this.stopped) return;
    const lead = await takeLead(session, relayCursorName(subjectPrefix));
    log.info({ epoch: lead.epoch, cursor: lead.cursor }, 'event relay leads');
    session.on('notification', () => this.nudge());
    await session.query('listen audit_events');
    this.leadingNow = true;
    await this.options.faultPoint?.('leading', { epoch: lead.epoch, cursor: lead.cursor });
    const batchSize = this.options.batchSize ?? 200;
    // Every entry at or below it is published or will never exist: the cursor, or a horizon up to
    // which a read found nothing more (seqs of rolled-back appends are never stored).
    let readUpTo = BigInt(lead.cursor);
    // A published batch whose cursor move waits for the next round's confirmation (one statement for both).
    let unmoved: PublishedBatch | null = null;
    while (!this.stopped) {
      this.notified = false;
      // Every round, one statement on the leader session: stops a relay whose session (and so lock)
      // is gone, or whose epoch was superseded, before it publishes again; moves the cursor past the
      // batch the previous round published; keeps a live leader's session busy; and, when no seq was
      // drawn past what it read, is all a round costs.
      const drawn = BigInt(unmoved ? await this.moveCursorPast(unmoved, (to) => confirmAndMove(session, db, lead, to)) : await confirmLead(session, lead));
      unmoved = null;
      if (BigInt(lead.cursor) > readUpTo) readUpTo = BigInt(lead.cursor);
      if (drawn > readUpTo) {
        const batch = await this.publishBatch(lead, batchSize, drawn.toString());
        if (batch.readUpTo !== null && BigInt(batch.readUpTo) > readUpTo) readUpTo = BigInt(batch.readUpTo);
        unmoved = batch.published > 0 ? batch : null;
        // A full batch: more are waiting behind it.
        if (batch.published === batchSize) continue;
      }
      // No notification came during this round: the pause may be a long poll, so the cursor moves now.
      if (unmoved && !this.notified) {
        await this.moveCursorPast(unmoved, (to) => moveCursor(db, lead, to));
        unmoved = null;
      }
      await this.idle();
    }
    // Stopping: the batch published last is not left for the next leader to publish again.
    if (unmoved) await this.moveCursorPast(unmoved, (to) => moveCursor(db, lead, to));
  }

  /** Moves the cursor past a published batch (fenced: RelayFencedError, nothing written, once another relay leads). */
  private async moveCursorPast<T>(batch: PublishedBatch, move: (to: string) => Promise<T>): Promise<T> {
    await this.options.faultPoint?.('before-cursor-move', { epoch: batch.epoch, cursor: batch.after, to: batch.to });
    const result = await move(batch.to);
    this.options.onPublished?.(batch.published);
    return result;
  }

  /**
   * Publishes the entries after the cursor up to the commit horizon, at most batchSize of them, and
   * leaves the cursor where it is (the caller moves it). `drawn`: how far the sequence was drawn, as
   * this round's confirmation read it (the horizon's first step).
   */
  private async publishBatch(lead: Lead, batchSize: number, drawn: string): Promise<PublishedBatch> {
    const { db, js, faultPoint } = this.options;
    const after = lead.cursor;
    // Only up to the commit horizon: an entry whose seq was drawn before a higher one's may commit
    // after it, and the cursor must not pass it first.
    const read = await readLedgerUpToHorizon(db, drawn, after, batchSize);
    const horizon = await this.starvation.observe(read.horizon);
    const nothing = { epoch: lead.epoch, after, to: after, published: 0 };
    if (horizon === null) return { ...nothing, readUpTo: null };
    const rows = read.rows;
    const readUpTo = rows.length < batchSize ? horizon : null;
    if (rows.length === 0) return { ...nothing, readUpTo };
    const last = rows[rows.length - 1]!.seq;
    await faultPoint?.('before-publish', { epoch: lead.epoch, cursor: after, to: last });
    // Pipelined: all are sent in ledger order on one connection (which NATS keeps in order), then
    // every acknowledgement is awaited before the cursor moves. Each in the trace its entry was appended in (docs/tracing.md).
    const traces = await readEntryTraces(
      db,
      rows.map((row) => row.event_id),
    );
    await Promise.all(
      rows.map((row) =>
        publishEntryEvent(
          js,
          subjectFor(this.options.subjectPrefix, row.event_type as AuditEventType, row.tenant_id),
          JSON.stringify(toLifecycleEvent(row)),
          row,
          traces.get(row.event_id),
          {
            msgID: row.event_id,
            timeout: 5000,
          },
        ),
      ),
    );
    return { epoch: lead.epoch, after, to: last, published: rows.length, readUpTo };
  }

  /**
   * The pause between rounds: until pollMs passes, or debounceMs after a notification (at once
   * debounceMs when one came during the round just done), or stop().
   */
  private idle(): Promise<void> {
    const debounceMs = this.options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    let debouncing = this.notified;
    if (this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.onNotification = null;
        resolve();
      };
      let timer = setTimeout(finish, debouncing ? debounceMs : (this.options.pollMs ?? DEFAULT_POLL_MS));
      this.wake = finish;
      this.onNotification = () => {
        if (debouncing) return;
        debouncing = true;
        clearTimeout(timer);
        timer = setTimeout(finish, debounceMs);
      };
    });
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

/**
 * confirmLeadAndMoveCursor; when the leader session is gone, the move is still tried through the
 * pool (the row's epoch, not the connection, decides whether it may be made), so that a batch
 * published under a leadership that still holds the row is not published again by the next one.
 */
async function confirmAndMove(session: pg.Client, db: Kysely<Database>, lead: Lead, to: string): Promise<string> {
  try {
    return await confirmLeadAndMoveCursor(session, lead, to);
  } catch (error) {
    if (error instanceof RelayFencedError) throw error;
    await moveCursor(db, lead, to);
    throw error;
  }
}

const DEFAULT_POLL_MS = 1000;
const DEFAULT_DEBOUNCE_MS = 40;
/** Events are published within a second or two; ten seconds without a horizon is worth a warning. */
const RELAY_STARVED_WARN_MS = 10_000;
const DEFAULT_SESSION_IDLE_TIMEOUT_MS = 15_000;
