/**
 * The event relay's fencing (src/events/relay-leadership.ts), against the real Postgres and NATS:
 * a relay that lost the lead (its session terminated, or ended by Postgres while the relay was
 * paused) never moves the cursor again, back or forward; another relay takes over within seconds;
 * and every ledger entry is on the stream exactly once after dedupe.
 *
 * "Paused" is a relay held at a named step (its fault point), the in-process stand-in for a SIGSTOP:
 * it issues no statement meanwhile, exactly as a stopped process would not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import type { Database } from '../../src/db/tables';
import type { LifecycleEvent } from '../../src/events/event-payload';
import { EventRelay, relayCursorName, type EventRelayOptions, type RelayStep, type RelayStepContext } from '../../src/events/event-relay';
import { ensureEventStream } from '../../src/events/jetstream-stream';
import { RELAY_LOCK_CLASS, type RelayFencedError } from '../../src/events/relay-leadership';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { createLogger } from '../../src/logging/logger';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { eventually } from '../helpers/eventually';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';
import { testEnv, uniqueName } from '../helpers/test-env';

jest.setTimeout(60_000);

/** A relay's fault point that a test arms: the next time the relay reaches `step`, it stays there until released. */
class StepHold {
  private armed: { step: RelayStep; reached: (context: RelayStepContext) => void; released: Promise<void> } | null = null;
  private releases: (() => void)[] = [];

  arm(step: RelayStep): { reached: Promise<RelayStepContext>; release: () => void } {
    let reached!: (context: RelayStepContext) => void;
    let release!: () => void;
    const whenReached = new Promise<RelayStepContext>((resolve) => (reached = resolve));
    const released = new Promise<void>((resolve) => (release = resolve));
    this.armed = { step, reached, released };
    this.releases.push(release);
    return { reached: whenReached, release };
  }

  disarm(): void {
    this.armed = null;
  }

  /** Lets every held relay go (for clean-up). */
  releaseAll(): void {
    this.armed = null;
    for (const release of this.releases.splice(0)) release();
  }

  readonly faultPoint = async (step: RelayStep, context: RelayStepContext): Promise<void> => {
    const armed = this.armed;
    if (armed?.step !== step) return;
    this.armed = null;
    armed.reached(context);
    await armed.released;
  };
}

/** A relay under test, and what it reported. */
interface RelayUnderTest {
  hold: StepHold;
  fenced: RelayFencedError[];
  /** Batches it published and moved the cursor past. */
  moves: number;
  retries: number;
}

/** Rejects if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

let testDb: LedgerTestDatabase;
let service: Kysely<Database>;
let admin: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let relays: { relay: EventRelay; hold: StepHold }[];

beforeEach(async () => {
  testDb = await createLedgerTestDatabase('relay_fencing');
  service = testDb.serviceDb({ max: 6 });
  admin = testDb.adminDb();
  nc = await connect({ servers: testEnv().natsUrl, name: 'event-relay-fencing-test' });
  jsm = await nc.jetstreamManager();
  stream = uniqueName('FENCING')
    .toUpperCase()
    .replace(/[^A-Z0-9_-]/g, '_');
  prefix = uniqueName('fencing').replace(/[^a-z0-9_-]/gi, '_');
  await ensureEventStream(jsm, stream, prefix);
  relays = [];
});

afterEach(async () => {
  for (const { hold } of relays) hold.releaseAll();
  await Promise.all(relays.map(({ relay }) => relay.stop()));
  await jsm.streams.delete(stream).catch(() => undefined);
  await nc.close();
  await testDb.drop();
});

function startRelay(name: string, options: Partial<EventRelayOptions> = {}): RelayUnderTest {
  const hold = new StepHold();
  const observed: RelayUnderTest = { hold, fenced: [], moves: 0, retries: 0 };
  const relay = new EventRelay({
    db: service,
    databaseUrl: testDb.serviceUrl,
    js: nc.jetstream(),
    subjectPrefix: prefix,
    log: createLogger({ name, level: 'silent' }),
    pollMs: 50,
    faultPoint: hold.faultPoint,
    onPublished: () => (observed.moves += 1),
    onRetry: () => (observed.retries += 1),
    onFenced: (error) => observed.fenced.push(error),
    ...options,
  });
  relays.push({ relay, hold });
  relay.start();
  return observed;
}

/** Appends `count` entries in one transaction (so a relay sees all of them or none), in seq order. */
async function appendBatch(count: number): Promise<{ seq: string; event_id: string }[]> {
  return service.transaction().execute(async (trx) => {
    const rows = [];
    for (let i = 0; i < count; i += 1) rows.push(await appendAuditEvent(trx, newAuditEvent()));
    return rows;
  });
}
const lastSeq = (rows: { seq: string }[]): string => rows[rows.length - 1]!.seq;

async function cursorRow(): Promise<{ epoch: string; last_seq: string }> {
  const { rows } = await sql<{ epoch: string; last_seq: string }>`
    select leader_epoch::text as epoch, last_seq::text as last_seq from event_relay_cursor where name = ${relayCursorName(prefix)}`.execute(admin);
  return rows[0] ?? { epoch: 'none', last_seq: 'none' };
}

async function cursorAt(seq: string, what: string): Promise<{ epoch: string; last_seq: string }> {
  return eventually(
    async () => {
      const row = await cursorRow();
      return row.last_seq === seq && row;
    },
    20_000,
    what,
  );
}

/** The backend holding this database's relay lock, if any. */
async function leaderPid(): Promise<number | null> {
  const { rows } = await sql<{ pid: number }>`
    select pid from pg_locks
    where locktype = 'advisory' and classid = ${RELAY_LOCK_CLASS} and granted
      and database = (select oid from pg_database where datname = current_database())`.execute(admin);
  return rows[0]?.pid ?? null;
}

/** Waits until `count` relays of this database stand by: their session's last statement tried the lock (a leader's never does). */
async function standingBy(count: number): Promise<void> {
  await eventually(
    async () => {
      const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and application_name = 'vm-tenant-event-relay' and query like '%pg_try_advisory_lock%'`.execute(admin);
      return rows[0]!.n >= count;
    },
    10_000,
    `${count} relays standing by`,
  );
}

/** Every event on the stream, in stream order (duplicates would show up as repeated ids). */
async function published(): Promise<LifecycleEvent[]> {
  const { state } = await jsm.streams.info(stream);
  const events: LifecycleEvent[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq += 1)
    events.push((await jsm.streams.getMessage(stream, { seq })).json<LifecycleEvent>());
  return events;
}

async function expectEveryEntryOnTheStreamOnce(): Promise<void> {
  const ledger = await service.selectFrom('audit_events').select(['seq', 'event_id']).orderBy('seq').execute();
  expect(ledger.length).toBeGreaterThan(0);
  // In seq order, each once (the payload carries no global seq: the order is the stream's).
  expect((await published()).map((e) => e.event_id)).toEqual(ledger.map((row) => row.event_id));
}

/** Samples the cursor every few milliseconds until stopped; answers every value seen. */
function watchCursor(): { stop: () => Promise<bigint[]> } {
  const seen: bigint[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const { last_seq } = await cursorRow();
      if (last_seq !== 'none') seen.push(BigInt(last_seq));
      await sleep(10);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return seen;
    },
  };
}

/** Waits until the relay has done something after being released: been fenced, retried, or moved the cursor. */
async function nextOutcome(relay: RelayUnderTest, before: RelayUnderTest, what: string): Promise<void> {
  await eventually(async () => relay.fenced.length > before.fenced.length || relay.retries > before.retries || relay.moves > before.moves, 20_000, what);
}
const snapshot = (relay: RelayUnderTest): RelayUnderTest => ({ ...relay, fenced: [...relay.fenced] });

describe('the event relay is fenced: only the current leader moves the cursor', () => {
  test("when the leader's session is terminated between publishing and moving the cursor, then a second relay takes over within seconds, the first never moves the cursor again, and every event is on the stream once", async () => {
    const first = await appendBatch(3);
    const a = startRelay('relay-a');
    expect(await cursorAt(lastSeq(first), 'relay A to lead and publish the first batch')).toEqual({ epoch: '1', last_seq: lastSeq(first) });

    // A publishes the second batch and is held before it moves the cursor.
    const aHeld = a.hold.arm('before-cursor-move');
    const second = await appendBatch(3);
    // (Its batch may be the first part of the second only: the commit horizon is read while the
    // appending transaction still draws seqs.)
    expect(await within(aHeld.reached, 20_000, 'relay A to publish the second batch')).toMatchObject({ epoch: '1', cursor: lastSeq(first) });

    // B stands by; it is held right after it takes the lead, so that A's late move would be a move forward.
    const b = startRelay('relay-b');
    const bLeads = b.hold.arm('leading');
    await standingBy(1);
    const pidA = await leaderPid();
    expect(pidA).not.toBeNull();
    const terminatedAt = Date.now();
    await sql`select pg_terminate_backend(${pidA})`.execute(admin);

    expect(await within(bLeads.reached, 10_000, 'relay B to take the lead')).toEqual({ epoch: '2', cursor: lastSeq(first) });
    expect(Date.now() - terminatedAt).toBeLessThan(5_000);
    expect(await leaderPid()).not.toBe(pidA);
    expect(await cursorRow()).toEqual({ epoch: '2', last_seq: lastSeq(first) });

    // A resumes and tries to move the cursor (forward) under its old epoch: refused, nothing written.
    const beforeA = snapshot(a);
    aHeld.release();
    await nextOutcome(a, beforeA, 'relay A to try to move the cursor');
    expect(await cursorRow()).toEqual({ epoch: '2', last_seq: lastSeq(first) });
    expect(a.moves).toBe(beforeA.moves);
    expect(a.fenced.map((error) => error.epoch)).toEqual(['1']);

    // B publishes from where the cursor is (A's batch again, deduplicated) and goes on leading; A stands by.
    bLeads.release();
    await cursorAt(lastSeq(second), 'relay B to publish the second batch');
    const third = await appendBatch(3);
    expect(await cursorAt(lastSeq(third), 'relay B to publish the third batch')).toEqual({ epoch: '2', last_seq: lastSeq(third) });
    await sleep(500); // A, standing by, must not lead (a new epoch) nor move anything
    expect(await cursorRow()).toEqual({ epoch: '2', last_seq: lastSeq(third) });
    expect(a.moves).toBe(beforeA.moves);
    await expectEveryEntryOnTheStreamOnce();
  });

  test('when a paused leader loses its session to Postgres and resumes after another relay moved on, then its move back is refused and the cursor never goes back', async () => {
    const watcher = watchCursor();
    const first = await appendBatch(3);
    // A short idle timeout: Postgres ends A's session soon after A stops issuing statements.
    const a = startRelay('relay-a', { sessionIdleTimeoutMs: 4_000 });
    await cursorAt(lastSeq(first), 'relay A to lead and publish the first batch');
    startRelay('relay-b');
    await standingBy(1);

    // A is paused (no statement at all) after publishing the second batch, before moving the cursor.
    const aHeld = a.hold.arm('before-cursor-move');
    const second = await appendBatch(3);
    await within(aHeld.reached, 20_000, 'relay A to publish the second batch');
    const pausedAt = Date.now();

    // Nobody terminates anything: Postgres ends the idle session, and B takes over.
    expect(await cursorAt(lastSeq(second), 'relay B to take over and publish the second batch')).toEqual({ epoch: '2', last_seq: lastSeq(second) });
    expect(Date.now() - pausedAt).toBeLessThan(10_000);
    const third = await appendBatch(3);
    await cursorAt(lastSeq(third), 'relay B to publish the third batch');

    // A resumes and moves "its" cursor: back, into the second batch. Refused.
    const beforeA = snapshot(a);
    aHeld.release();
    await nextOutcome(a, beforeA, 'relay A to try to move the cursor');
    expect(await cursorRow()).toEqual({ epoch: '2', last_seq: lastSeq(third) });
    expect(a.fenced.map((error) => error.epoch)).toEqual(['1']);

    const fourth = await appendBatch(3);
    expect(await cursorAt(lastSeq(fourth), 'relay B to publish the fourth batch')).toEqual({ epoch: '2', last_seq: lastSeq(fourth) });
    const seen = await watcher.stop();
    expect(seen.length).toBeGreaterThan(0);
    expect(seen).toEqual([...seen].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)));
    await expectEveryEntryOnTheStreamOnce();
  });

  test("when the cursor row is already past the leader's batch (moved without a new epoch), then the leader's move is refused, it takes a new epoch, and the cursor never goes back", async () => {
    const first = await appendBatch(2);
    const a = startRelay('relay-a');
    await cursorAt(lastSeq(first), 'relay A to lead and publish the first batch');

    const aHeld = a.hold.arm('before-cursor-move');
    await appendBatch(2);
    const { epoch, to } = await within(aHeld.reached, 20_000, 'relay A to publish (part of) the second batch');
    expect(epoch).toBe('1');
    // Meanwhile the row moves past A's batch under A's own epoch (as an operator skipping entries
    // would, or a bug): only the `last_seq <` guard stands between A and a cursor moved back.
    const third = await appendBatch(2);
    await sql`update event_relay_cursor set last_seq = ${lastSeq(third)}::bigint where name = ${relayCursorName(prefix)}`.execute(admin);

    // Held again at its next publish, so a wrongly accepted move is seen before anything else moves.
    const beforeA = snapshot(a);
    const aNext = a.hold.arm('before-publish');
    aHeld.release();
    await nextOutcome(a, beforeA, 'relay A to try to move the cursor');
    expect(await cursorRow()).toEqual({ epoch: '1', last_seq: lastSeq(third) });
    expect(a.fenced.map((error) => error.epoch)).toEqual(['1']);
    a.hold.disarm();
    aNext.release();

    // A steps down, leads again under a new epoch, from the row's cursor.
    const fourth = await appendBatch(2);
    expect(await cursorAt(lastSeq(fourth), 'relay A to lead again and publish the fourth batch')).toEqual({ epoch: '2', last_seq: lastSeq(fourth) });
    // On the stream: what A published before it was held, then the fourth batch; the row skipped the rest.
    const ledger = await service.selectFrom('audit_events').select(['seq', 'event_id']).orderBy('seq').execute();
    const expected = [...ledger.filter((row) => BigInt(row.seq) <= BigInt(to!)), ...fourth];
    expect((await published()).map((e) => e.event_id)).toEqual(expected.map((row) => row.event_id));
  });
});
