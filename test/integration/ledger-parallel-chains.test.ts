import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import pg from 'pg';
import type { Database } from '../../src/db/tables';
import type { LifecycleEvent } from '../../src/events/event-payload';
import { EventRelay } from '../../src/events/event-relay';
import { ensureEventStream } from '../../src/events/jetstream-stream';
import { createLogger } from '../../src/logging/logger';
import { verifyChain } from '../../src/ledger/chain-verifier';
import { appendAuditEvent, LEDGER_CHAIN_LOCK_CLASS } from '../../src/ledger/ledger-append';
import { LedgerWriter } from '../../src/ledger/ledger-writer';
import type { AuditEventRow } from '../../src/db/tables';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';
import { testEnv, uniqueName } from '../helpers/test-env';
import { eventually } from '../helpers/eventually';

jest.setTimeout(60_000);

let testDb: LedgerTestDatabase;
let service: Kysely<Database>;

beforeEach(async () => {
  testDb = await createLedgerTestDatabase('parallel');
  service = testDb.serviceDb({ max: 6 });
});
afterEach(async () => {
  await testDb.drop();
});

/** Whether a promise is still pending after `ms`. */
async function stillPending(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const pending = Symbol('pending');
  return (
    (await Promise.race([
      promise.then(
        () => null,
        () => null,
      ),
      sleep(ms).then(() => pending),
    ])) === pending
  );
}

/** Appends `event` in a transaction that stays open until `release` is called. */
function holdOpenAppend(event: ReturnType<typeof newAuditEvent>) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let appended!: (row: AuditEventRow) => void;
  const inserted = new Promise<AuditEventRow>((resolve) => (appended = resolve));
  const committed = service.transaction().execute(async (trx) => {
    appended(await appendAuditEvent(trx, event));
    await released;
  });
  return { inserted, release, committed };
}

describe('appends of different tenants run in parallel', () => {
  test("when an append of tenant A is held open, then an append of tenant B commits meanwhile, and A's next append waits for A's", async () => {
    const held = holdOpenAppend(newAuditEvent({ tenant_id: 'tenant-a' }));
    const a1 = await held.inserted;

    const b1 = await Promise.race([appendAuditEvent(service, newAuditEvent({ tenant_id: 'tenant-b' })), sleep(5_000).then(() => 'B waited for A' as const)]);
    expect(b1).toMatchObject({ tenant_id: 'tenant-b', tenant_seq: '1' });

    const a2 = appendAuditEvent(service, newAuditEvent({ tenant_id: 'tenant-a' }));
    expect(await stillPending(a2, 500)).toBe(true);
    held.release();
    await held.committed;
    // A's chain stays strictly linear: the second entry links to the first, committed before it.
    expect(await a2).toMatchObject({ tenant_seq: '2', tenant_prev_hash: a1.tenant_hash, prev_hash: a1.hash });
    expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 3 });
  });

  test('when a LedgerWriter batch meets a chain held elsewhere, then the batch commits its other units and that unit follows once the chain is free', async () => {
    // Tenant B's chain lock, held by another transaction (as another process's batch would).
    const holder = new pg.Client({ connectionString: testDb.serviceUrl });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock($1, hashtext($2))', [LEDGER_CHAIN_LOCK_CLASS, 'tenant-b']);
      const writer = new LedgerWriter(service);
      // Queued together behind a first unit, so they form one batch: A, B, A.
      const first = writer.run((trx) => appendAuditEvent(trx, newAuditEvent({ tenant_id: 'tenant-c' })));
      const a1 = writer.run((trx) => appendAuditEvent(trx, newAuditEvent({ tenant_id: 'tenant-a' })));
      const b1 = writer.run((trx) => appendAuditEvent(trx, newAuditEvent({ tenant_id: 'tenant-b' })));
      const a2 = writer.run((trx) => appendAuditEvent(trx, newAuditEvent({ tenant_id: 'tenant-a' })));
      await first;
      const committed = await Promise.race([Promise.all([a1, a2]), sleep(5_000).then(() => 'the batch waited for tenant B' as const)]);
      expect(committed).toMatchObject([{ tenant_seq: '1' }, { tenant_seq: '2' }]);
      expect(await stillPending(b1, 300)).toBe(true);

      await holder.query('commit');
      expect(await b1).toMatchObject({ tenant_id: 'tenant-b', tenant_seq: '1' });
      expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 4 });
    } finally {
      await holder.end();
    }
  });
});

describe('the event relay reads up to the commit horizon', () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let stream: string;
  let prefix: string;
  let relay: EventRelay | null = null;
  beforeEach(async () => {
    nc = await connect({ servers: testEnv().natsUrl });
    jsm = await nc.jetstreamManager();
    stream = uniqueName('CHAINS')
      .toUpperCase()
      .replace(/[^A-Z0-9_-]/g, '_');
    prefix = uniqueName('chains').replace(/[^a-z0-9_-]/gi, '_');
    await ensureEventStream(jsm, stream, prefix);
  });
  afterEach(async () => {
    await relay?.stop();
    relay = null;
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });

  async function published(): Promise<LifecycleEvent[]> {
    const { state } = await jsm.streams.info(stream);
    const events: LifecycleEvent[] = [];
    for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq += 1)
      events.push((await jsm.streams.getMessage(stream, { seq })).json<LifecycleEvent>());
    return events;
  }

  test('when a lower seq commits after a higher one, then the relay publishes both, once each, in seq order', async () => {
    const held = holdOpenAppend(newAuditEvent({ tenant_id: 'tenant-a' }));
    const low = await held.inserted;
    const high = await appendAuditEvent(service, newAuditEvent({ tenant_id: 'tenant-b' }));
    expect(BigInt(high.seq)).toBeGreaterThan(BigInt(low.seq));

    relay = new EventRelay({
      db: service,
      databaseUrl: testDb.serviceUrl,
      js: nc.jetstream(),
      subjectPrefix: prefix,
      log: createLogger({ name: 'relay', level: 'silent' }),
      pollMs: 50,
    });
    relay.start();
    // The higher entry is committed, but the relay must not move past the open lower one.
    await sleep(1_500);
    expect(await published()).toEqual([]);

    held.release();
    await held.committed;
    const events = await eventually(
      async () => {
        const now = await published();
        return now.length >= 2 && now;
      },
      20_000,
      'both entries to be published',
    );
    await sleep(500); // nothing more may follow
    // In seq order (the payload carries no global seq: the order is the stream's).
    expect((await published()).map((e) => e.event_id)).toEqual([low.event_id, high.event_id]);
    expect(events).toHaveLength(2);
    const cursor = await service.selectFrom('event_relay_cursor').select('last_seq').executeTakeFirstOrThrow();
    expect(cursor.last_seq).toBe(high.seq);
  });
});
