import { Kysely, PostgresDialect } from 'kysely';
import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import pg from 'pg';
import type { Database } from '../../src/db/tables';
import type { LifecycleEvent } from '../../src/events/event-payload';
import { relayCursorName } from '../../src/events/event-relay';
import { subjectFor } from '../../src/shared/event-subjects';
import { eventContractProblems } from '../helpers/event-contract-check';
import { testEnv } from '../helpers/test-env';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

// Generous: a loaded 2-core machine runs Temporal, Postgres, NATS and two Jest workers at once.
jest.setTimeout(180_000);
const SETTLE_MS = 60_000;

interface StreamMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  event: LifecycleEvent;
}

/**
 * A subscriber as an operator would run one: an ordered consumer on the stream, filtered to the
 * service's subjects, collecting every message it is delivered (in stream order, from the start),
 * and what in each breaks the event contract (docs/asyncapi.yaml; checked after every test).
 */
async function subscribe(js: JetStreamClient, stream: string, prefix: string) {
  const received: StreamMessage[] = [];
  const contractProblems: string[] = [];
  const consumer = await js.consumers.get(stream, { filterSubjects: `${prefix}.>` });
  const messages = await consumer.consume();
  const done = (async () => {
    for await (const m of messages) {
      const message = { seq: m.seq, subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), event: m.json<LifecycleEvent>() };
      contractProblems.push(...eventContractProblems({ subject: message.subject, msgId: message.msgId, payload: message.event }));
      received.push(message);
    }
  })();
  return {
    received,
    contractProblems,
    /** Resolves once everything the stream holds now has been delivered. */
    async caughtUp(jsm: JetStreamManager): Promise<void> {
      const { state } = await jsm.streams.info(stream);
      await eventually(async () => state.messages === 0 || (received.at(-1)?.seq ?? 0) >= state.last_seq, SETTLE_MS, 'the subscriber to catch up');
    },
    async stop(): Promise<void> {
      await messages.close();
      await done;
    },
  };
}

describe('lifecycle events on NATS JetStream', () => {
  let stack: TestStack;
  let nc: NatsConnection;
  let js: JetStreamClient;
  let jsm: JetStreamManager;
  let superDb: Kysely<Database>;
  let subscriber: Awaited<ReturnType<typeof subscribe>>;
  const read = async () => subscriber.received;
  const ofTenant = (messages: StreamMessage[], tenantId: string) => messages.filter((m) => m.event.tenant_id === tenantId);

  beforeAll(async () => {
    stack = await startTestStack();
    nc = await connect({ servers: stack.config.natsUrl, name: 'events-test' });
    js = nc.jetstream();
    jsm = await nc.jetstreamManager();
    // The worker created the stream (idempotently) at start.
    subscriber = await subscribe(js, stack.config.natsStream, stack.config.natsSubjectPrefix);
    superDb = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: testEnv().migrationDatabaseUrl, max: 2 }) }) });
  });
  // Every message delivered so far matches the contract (a mismatch fails the test during which it arrived, or the next).
  afterEach(() => {
    expect(subscriber.contractProblems).toEqual([]);
  });
  afterAll(async () => {
    await subscriber?.stop();
    await stack?.close();
    await jsm?.streams.delete(stack.config.natsStream).catch(() => undefined);
    await nc?.drain();
    await superDb?.destroy();
  });

  test('when a VM is spawned and destroyed, then each lifecycle event is published exactly once with its owner fields', async () => {
    const { tenantId, token } = await createTenant(stack);
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    const vmId: string = spawned.body.vm_id;
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'running', SETTLE_MS, 'VM running');
    const destroyed = await stack.request('DELETE', `/v1/vms/${vmId}`, { token });
    expect(destroyed.status).toBe(202);
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'destroyed', SETTLE_MS, 'VM destroyed');

    const lifecycle = ['VM_SPAWN_REQUESTED', 'VM_RUNNING', 'VM_DESTROY_REQUESTED', 'VM_DESTROYED'];
    await eventually(
      async () => {
        const mine = (await read()).filter((m) => m.event.vm_id === vmId);
        return lifecycle.every((type) => mine.some((m) => m.event.event_type === type));
      },
      SETTLE_MS,
      'all lifecycle events of the VM on the stream',
    );
    await subscriber.caughtUp(jsm);
    const messages = (await read()).filter((m) => m.event.vm_id === vmId);

    expect(messages.map((m) => m.event.event_type)).toEqual(lifecycle);
    expect(new Set(messages.map((m) => m.event.event_id)).size).toBe(messages.length);
    for (const m of messages) {
      expect(m.msgId).toBe(m.event.event_id);
      expect(m.subject).toBe(subjectFor(stack.config.natsSubjectPrefix, m.event.event_type as never, tenantId));
      expect(m.event).toMatchObject({ tenant_id: tenantId, vm_id: vmId, event_type: expect.any(String), event_id: expect.any(String) });
      expect(typeof m.event.request_id).toBe('string');
      expect(m.event.request_id!.length).toBeGreaterThan(0);
      expect(Number.isNaN(Date.parse(m.event.occurred_at))).toBe(false);
    }
    // The API call's request id reaches the events the workflow's activities record.
    expect(messages.find((m) => m.event.event_type === 'VM_RUNNING')!.event.request_id).toBe(messages[0]!.event.request_id);

    // The stream holds what the ledger holds for this VM, no more.
    const ledger = await stack.db.selectFrom('audit_events').select('event_id').where('vm_id', '=', vmId).execute();
    expect(new Set(messages.map((m) => m.event.event_id))).toEqual(new Set(ledger.map((row) => row.event_id)));
  });

  test('when a tenant is created and its quota changed, then TENANT_CREATED and QUOTA_CHANGED are published', async () => {
    const { tenantId } = await createTenant(stack, { max_vms: 4 });
    const patched = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 6 } });
    expect(patched.status).toBe(200);

    const messages = await eventually(
      async () => {
        const mine = ofTenant(await read(), tenantId);
        return mine.some((m) => m.event.event_type === 'QUOTA_CHANGED') ? mine : undefined;
      },
      SETTLE_MS,
      'tenant events on the stream',
    );
    const created = messages.filter((m) => m.event.event_type === 'TENANT_CREATED');
    const changed = messages.filter((m) => m.event.event_type === 'QUOTA_CHANGED');
    expect(created).toHaveLength(1);
    expect(changed).toHaveLength(1);
    expect(created[0]!.subject).toBe(`${stack.config.natsSubjectPrefix}.tenant.created.${tenantId}`);
    expect(changed[0]!.subject).toBe(`${stack.config.natsSubjectPrefix}.tenant.quota_changed.${tenantId}`);
    for (const m of [...created, ...changed]) {
      expect(m.msgId).toBe(m.event.event_id);
      expect(m.event).toMatchObject({ tenant_id: tenantId, event_id: expect.any(String), occurred_at: expect.any(String), request_id: expect.any(String) });
    }
  });

  test('when the relay publishes the same ledger entries again, then JetStream deduplicates them by event id', async () => {
    const { tenantId, token } = await createTenant(stack);
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    await eventually(async () => (await stack.request('GET', `/v1/vms/${spawned.body.vm_id}`, { token })).body.status === 'running', SETTLE_MS, 'VM running');
    const before = await eventually(
      async () => {
        const mine = ofTenant(await read(), tenantId);
        return mine.some((m) => m.event.event_type === 'VM_RUNNING') ? mine : undefined;
      },
      SETTLE_MS,
      'the tenant events on the stream',
    );
    // The global positions come from the ledger: no payload carries one (docs/events.md, "Payload").
    const ledgerRows = await superDb
      .selectFrom('audit_events')
      .select(['seq', 'event_id'])
      .where(
        'event_id',
        'in',
        before.map((m) => m.event.event_id),
      )
      .execute();
    expect(ledgerRows).toHaveLength(before.length);
    const seqs = ledgerRows.map((row) => BigInt(row.seq));
    const firstSeq = seqs.reduce((a, b) => (a < b ? a : b));
    const lastSeq = seqs.reduce((a, b) => (a > b ? a : b));
    await subscriber.caughtUp(jsm);
    const streamBefore = (await jsm.streams.info(stack.config.natsStream)).state;

    // A relay that stopped between publish and cursor update: it starts again from the older cursor,
    // and republishes. (A leading relay reads the cursor once; only it moves the cursor.)
    await stack.stopWorker();
    const cursor = relayCursorName(stack.config.natsSubjectPrefix);
    await superDb
      .updateTable('event_relay_cursor')
      .set({ last_seq: String(firstSeq - 1n) })
      .where('name', '=', cursor)
      .execute();
    await stack.startWorker();
    await eventually(
      async () => {
        const row = await superDb.selectFrom('event_relay_cursor').select('last_seq').where('name', '=', cursor).executeTakeFirst();
        return row && BigInt(row.last_seq) >= lastSeq;
      },
      SETTLE_MS,
      'the relay to republish the tenant events',
    );
    await subscriber.caughtUp(jsm);

    const after = ofTenant(await read(), tenantId);
    expect(after.map((m) => m.event.event_id)).toEqual(before.map((m) => m.event.event_id));
    expect(after.map((m) => m.seq)).toEqual(before.map((m) => m.seq));
    // Nothing at all was appended for the republished range (other tenants' events may arrive meanwhile).
    const range = await superDb
      .selectFrom('audit_events')
      .select('event_id')
      .where('seq', '>=', String(firstSeq))
      .where('seq', '<=', String(lastSeq))
      .execute();
    const republished = new Set(range.map((row) => row.event_id));
    const appended = (await read()).filter((m) => m.seq > streamBefore.last_seq && republished.has(m.event.event_id));
    expect(appended).toEqual([]);

    // And directly: a publish under an event id the stream already holds is acknowledged as a duplicate.
    const original = before[0]!;
    const ack = await js.publish(original.subject, JSON.stringify(original.event), { msgID: original.event.event_id });
    expect(ack.duplicate).toBe(true);
    await subscriber.caughtUp(jsm);
    expect(ofTenant(await read(), tenantId)).toHaveLength(before.length);
  });

  test('when events are published, then no payload carries a bearer token', async () => {
    const { tenantId, token } = await createTenant(stack);
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    const messages = await eventually(
      async () => {
        const mine = ofTenant(await read(), tenantId);
        return mine.some((m) => m.event.event_type === 'VM_RUNNING') ? mine : undefined;
      },
      SETTLE_MS,
      'the tenant events on the stream',
    );
    const everything = JSON.stringify((await read()).map((m) => m.event));
    for (const secret of [token, stack.adminToken]) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice(4)); // the token body without its vmt_ prefix
    }
    expect(everything).not.toMatch(/vmt_[0-9A-Za-z]{36}/);
    expect(messages.length).toBeGreaterThan(0);
  });
});
