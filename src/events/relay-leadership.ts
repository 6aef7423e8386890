import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import type { Database } from '../db/tables';

/**
 * Who may move the event relay's cursor, and how a relay that lost the lead is kept from moving it.
 *
 * Facts, and who writes each:
 * - the leadership lock: a session advisory lock (RELAY_LOCK_CLASS, hashtext(subject prefix)),
 *   held by a relay's own session (its "leader session", which also LISTENs). It decides who may
 *   take the lead; it cannot by itself stop a relay that lost it (the session died while the relay
 *   was paused, or a statement went through the pool instead of that session).
 * - the fencing token: `event_relay_cursor.leader_epoch`. Written only by `takeLead`, on the leader
 *   session right after the lock was granted: it adds one and returns the cursor in the same
 *   statement. Epoch e belongs to exactly one leadership.
 * - the cursor: `event_relay_cursor.last_seq`. Written only by `moveCursor` and
 *   `confirmLeadAndMoveCursor`: `... where leader_epoch = <mine> and last_seq < <new>`; nothing
 *   updated means the relay does not lead any more (RelayFencedError), and it stops publishing and
 *   goes back to standby.
 *
 * Invariants:
 * - the epoch only grows, and the cursor only grows (the `last_seq <` predicate);
 * - a move by epoch e commits only before the takeover of epoch e+1 commits. Both write the same
 *   row, so Postgres orders them: a move that races a takeover either commits first (and the
 *   takeover's RETURNING already sees it) or re-evaluates its WHERE against the new epoch and
 *   updates nothing. So a relay that lost the lead can move the cursor neither back nor forward,
 *   whatever connection it uses and however long it was paused;
 * - a new leader starts from the cursor its takeover returned: every move of the epochs before it.
 *
 * Crash windows: a relay that dies (or is fenced) between publishing a batch and moving the cursor
 * leaves that batch to the next leader, which publishes it again; JetStream drops the copies by
 * Nats-Msg-Id. A stale leader publishes at most the one batch it was in the middle of: every round
 * starts with `confirmLead` on the leader session, which fails once that session is gone or the
 * epoch has moved on.
 *
 * A paused leader (SIGSTOP, a stuck event loop) keeps its session, and so the lock, for as long as
 * Postgres keeps the session: the leader session therefore runs with `idle_session_timeout`, so
 * Postgres ends the session of a leader that stops issuing statements, and a standby takes the
 * lead within its poll interval. A leader confirms every round, so a live one is never idle that long.
 */

/** The advisory lock class of the relay's leadership (test/faults/replicas.test.ts looks for it). */
export const RELAY_LOCK_CLASS = 7_221_002;

/** A relay tried to move the cursor, or to go on leading, after another relay took the lead (or the cursor moved past it). */
export class RelayFencedError extends Error {
  override readonly name = 'RelayFencedError';
  constructor(
    /** The epoch of the leadership that was refused. */
    readonly epoch: string,
    message: string,
  ) {
    super(message);
  }
}

/** One leadership: its epoch, and the cursor as this leader last moved it. */
export interface Lead {
  readonly name: string;
  readonly epoch: string;
  cursor: string;
}

/** The relay's own session: it contends for the lock, holds it, and LISTENs. Not from a pool. */
export async function openLeaderSession(databaseUrl: string, idleTimeoutMs: number): Promise<pg.Client> {
  const session = new pg.Client({ connectionString: databaseUrl, application_name: 'vm-tenant-event-relay' });
  // A session ended by the server (idle_session_timeout, pg_terminate_backend) must not crash the
  // process; the next statement on it fails, and that is how the relay learns of it.
  session.on('error', () => undefined);
  await session.connect();
  await session.query(`select set_config('idle_session_timeout', $1, false)`, [String(idleTimeoutMs)]);
  return session;
}

/** Whether this session now holds the leadership lock of `subjectPrefix` (held until the session ends). */
export async function tryLeadershipLock(session: pg.Client, subjectPrefix: string): Promise<boolean> {
  const { rows } = await session.query<{ locked: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as locked', [RELAY_LOCK_CLASS, subjectPrefix]);
  return rows[0]?.locked === true;
}

/** Takes the next epoch, and the cursor as of now, in one statement. Call only while holding the lock, on its session. */
export async function takeLead(session: pg.Client, name: string): Promise<Lead> {
  const { rows } = await session.query<{ epoch: string; cursor: string }>(
    `insert into event_relay_cursor as c (name, last_seq, leader_epoch) values ($1, 0, 1)
     on conflict (name) do update set leader_epoch = c.leader_epoch + 1
     returning c.leader_epoch::text as epoch, c.last_seq::text as cursor`,
    [name],
  );
  const row = rows[0]!;
  return { name, epoch: row.epoch, cursor: row.cursor };
}

/**
 * Fails when the leader session is gone, or when the row holds another epoch (another relay took the
 * lead). In the same statement, on the leader session, reads how far the ledger's sequence has been
 * drawn: when nothing was drawn past what the relay already read, an idle round costs this one
 * statement, without a commit-horizon wait or a read of the ledger.
 */
export async function confirmLead(session: pg.Client, lead: Lead): Promise<string> {
  const { rows } = await session.query<{ epoch: string; drawn: string }>(
    `select c.leader_epoch::text as epoch, (select case when is_called then last_value else last_value - 1 end from audit_events_seq)::text as drawn
       from event_relay_cursor c where c.name = $1`,
    [lead.name],
  );
  const row = rows[0];
  if (row?.epoch !== lead.epoch)
    throw new RelayFencedError(lead.epoch, `event relay epoch ${lead.epoch} no longer leads: the cursor row holds epoch ${row?.epoch ?? 'none'}`);
  return row.drawn;
}

/**
 * confirmLead and moveCursor in one statement on the leader session: moves the cursor to `to` under
 * the same guard as moveCursor, and reads how far the sequence was drawn. A relay under load moves
 * the cursor past a batch this way at the start of its next round, so a batch costs no statement of
 * its own for the move. Nothing updated: RelayFencedError, as moveCursor.
 */
export async function confirmLeadAndMoveCursor(session: pg.Client, lead: Lead, to: string): Promise<string> {
  const { rows } = await session.query<{ drawn: string }>(
    `update event_relay_cursor c set last_seq = $3::bigint, updated_at = now()
      where c.name = $1 and c.leader_epoch = $2::bigint and c.last_seq < $3::bigint
      returning (select case when is_called then last_value else last_value - 1 end from audit_events_seq)::text as drawn`,
    [lead.name, lead.epoch, to],
  );
  const row = rows[0];
  if (!row) throw refusedMove(lead, to, (await session.query<CursorRow>(`${CURSOR_ROW} where name = $1`, [lead.name])).rows[0]);
  lead.cursor = to;
  return row.drawn;
}

/**
 * Moves the cursor to `to`, only if this leadership's epoch still holds the row and the cursor is
 * behind `to`; otherwise changes nothing and throws RelayFencedError. Any connection will do: the
 * row checks the token, not the connection.
 */
export async function moveCursor(db: Kysely<Database>, lead: Lead, to: string): Promise<void> {
  const moved = await sql`
    update event_relay_cursor set last_seq = ${to}::bigint, updated_at = now()
    where name = ${lead.name} and leader_epoch = ${lead.epoch}::bigint and last_seq < ${to}::bigint`.execute(db);
  if (moved.numAffectedRows === 1n) {
    lead.cursor = to;
    return;
  }
  // Only to say why: nothing was written either way.
  throw refusedMove(lead, to, (await sql<CursorRow>`${sql.raw(CURSOR_ROW)} where name = ${lead.name}`.execute(db)).rows[0]);
}

type CursorRow = { epoch: string; cursor: string };
const CURSOR_ROW = 'select leader_epoch::text as epoch, last_seq::text as cursor from event_relay_cursor';

function refusedMove(lead: Lead, to: string, now: CursorRow | undefined): RelayFencedError {
  return new RelayFencedError(
    lead.epoch,
    `event relay epoch ${lead.epoch} may not move the cursor to ${to}: the row holds epoch ${now?.epoch ?? 'none'} at ${now?.cursor ?? 'none'}`,
  );
}
