/**
 * What the event relay costs when there is little or nothing to publish (issue 20): an idle leader
 * runs one statement a round on its own session and none through the pool; a burst of commits goes
 * out in a few batches, not one round per entry; and an entry that commits while a batch is being
 * published is not left for the next poll.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Kysely, KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import type { Database } from '../../src/db/tables';
import { EventRelay, type EventRelayOptions, type RelayStep } from '../../src/events/event-relay';
import { ensureEventStream } from '../../src/events/jetstream-stream';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { LedgerWriter } from '../../src/ledger/ledger-writer';
import { createLogger } from '../../src/logging/logger';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { eventually } from '../helpers/eventually';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';
import { testEnv, uniqueName } from '../helpers/test-env';

jest.setTimeout(60_000);

/** Counts every statement run through the Kysely instance it is plugged into. */
class StatementCounter implements KyselyPlugin {
  count = 0;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    this.count += 1;
    return args.node;
  }
  transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return Promise.resolve(args.result);
  }
}

let testDb: LedgerTestDatabase;
let service: Kysely<Database>;
let nc: NatsConnection;
let jsm: JetStreamManager;
let stream: string;
let prefix: string;
let relay: EventRelay | null;

beforeEach(async () => {
  testDb = await createLedgerTestDatabase('relay_wakes');
  service = testDb.serviceDb({ max: 6 });
  nc = await connect({ servers: testEnv().natsUrl, name: 'event-relay-wakes-test' });
  jsm = await nc.jetstreamManager();
  stream = uniqueName('WAKES')
    .toUpperCase()
    .replace(/[^A-Z0-9_-]/g, '_');
  prefix = uniqueName('wakes').replace(/[^a-z0-9_-]/gi, '_');
  await ensureEventStream(jsm, stream, prefix);
  relay = null;
});

afterEach(async () => {
  await relay?.stop();
  await jsm.streams.delete(stream).catch(() => undefined);
  await nc.close();
  await testDb.drop();
});

/** Starts a relay whose pool statements are counted; `batches` holds the size of every batch it published. */
function startRelay(options: Partial<EventRelayOptions> = {}): { pool: StatementCounter; batches: number[] } {
  const pool = new StatementCounter();
  const batches: number[] = [];
  relay = new EventRelay({
    db: service.withPlugin(pool),
    databaseUrl: testDb.serviceUrl,
    js: nc.jetstream(),
    subjectPrefix: prefix,
    log: createLogger({ name: 'relay', level: 'silent' }),
    onPublished: (count) => batches.push(count),
    ...options,
  });
  relay.start();
  return { pool, batches };
}

const messages = async (): Promise<number> => (await jsm.streams.info(stream)).state.messages;
const published = (count: number, what: string) => eventually(async () => (await messages()) === count, 20_000, what, 20);

describe('the event relay wakes only for work', () => {
  test('when the relay has published everything and polls on, then it reads nothing through the pool: one statement a round on its session', async () => {
    const { pool } = startRelay({ pollMs: 50 });
    await appendAuditEvent(service, newAuditEvent());
    await published(1, 'the first entry on the stream');
    await sleep(200);
    const before = pool.count;
    // About 20 polls: before issue 20 each cost a commit-horizon read (two statements) through the pool.
    await sleep(1_000);
    expect(pool.count - before).toBe(0);
    // It still publishes what comes next.
    await appendAuditEvent(service, newAuditEvent());
    await published(2, 'the second entry on the stream');
  });

  test('when entries commit one by one in quick succession, then the relay publishes them in a few batches', async () => {
    const { batches } = startRelay({ pollMs: 1_000, debounceMs: 200 });
    await appendAuditEvent(service, newAuditEvent());
    await published(1, 'the first entry on the stream');
    // The relay reports a batch after its cursor moved, a moment after the stream has it.
    await eventually(async () => batches.length === 1, 5_000, 'the first batch reported', 10);
    batches.length = 0;
    for (let i = 0; i < 20; i += 1) {
      await appendAuditEvent(service, newAuditEvent());
      await sleep(3);
    }
    await published(21, 'the burst on the stream');
    // Its last batch is reported a moment after the stream has it; a twenty-first entry never comes.
    await eventually(async () => batches.reduce((a, b) => a + b, 0) === 20, 5_000, 'the burst reported in batches', 10);
    await sleep(200);
    expect(batches.reduce((a, b) => a + b, 0)).toBe(20);
    expect(batches.length).toBeLessThanOrEqual(3);
  });

  test('when an entry commits while the relay publishes a batch, then it is published without waiting for the next poll', async () => {
    let holdAt: RelayStep | null = 'before-publish';
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const holding = new Promise<void>((resolve) => (reached = resolve));
    startRelay({
      pollMs: 10_000,
      faultPoint: async (step) => {
        if (step !== holdAt) return;
        holdAt = null;
        reached();
        await released;
      },
    });
    await appendAuditEvent(service, newAuditEvent());
    await holding;
    await appendAuditEvent(service, newAuditEvent());
    await sleep(100); // its notification arrives while the batch is held
    release();
    const started = Date.now();
    await published(2, 'the entry that committed during the batch');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test("when the worker's own appends commit while its relay leads, then they notify nobody and the relay publishes them at once; another process's appends still notify", async () => {
    // A poll far beyond the test: only a nudge or a notification can make the relay publish in time.
    startRelay({ pollMs: 10_000 });
    const leadingRelay = relay!;
    await eventually(async () => leadingRelay.leading, 10_000, 'the relay to lead', 20);
    const listener = new pg.Client({ connectionString: testDb.serviceUrl });
    await listener.connect();
    const heard: string[] = [];
    listener.on('notification', (message) => heard.push(message.payload ?? ''));
    await listener.query('listen audit_events');
    try {
      const writer = new LedgerWriter(service);
      writer.wakeInProcess(leadingRelay);
      // Alone and in group commits: both ways of committing.
      await writer.run((trx) => appendAuditEvent(trx, newAuditEvent()));
      await Promise.all(Array.from({ length: 5 }, () => writer.run((trx) => appendAuditEvent(trx, newAuditEvent()))));
      const started = Date.now();
      await published(6, "the worker's entries on the stream");
      expect(Date.now() - started).toBeLessThan(3_000);
      await listener.query('select 1'); // a notification sent before this answer has been delivered
      expect(heard).toEqual([]);

      // An append of another process (the API's): notified, as before.
      await appendAuditEvent(service, newAuditEvent());
      await published(7, "the other process's entry on the stream");
      await listener.query('select 1');
      expect(heard).toHaveLength(1);
    } finally {
      await listener.end();
    }
  });
});
