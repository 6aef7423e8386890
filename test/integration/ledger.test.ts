import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { GENESIS_HASH } from '../../src/ledger/ledger-hash';
import { verifyChain } from '../../src/ledger/chain-verifier';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { listAuditEvents } from '../../src/ledger/ledger-queries';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

/** Postgres error fields as pg reports them. */
async function refusal(query: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await query;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the statement to be refused, but it succeeded');
}

async function allEntries(db: Kysely<Database>) {
  return db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').execute();
}

// Each test gets its own database: the ledger is one chain per database, and some tests break it.
let testDb: LedgerTestDatabase;
let service: Kysely<Database>;
let admin: Kysely<Database>;

beforeEach(async () => {
  testDb = await createLedgerTestDatabase();
  service = testDb.serviceDb({ max: 10 });
  admin = testDb.adminDb();
});

afterEach(async () => {
  await testDb.drop();
});

describe('audit ledger', () => {
  test('when entries are appended, then each links to the previous one, seq runs 1..N and the chain verifies', async () => {
    const tenant = 'acme-corp';
    // Keys out of order, nested values, non-ASCII text and numbers: jsonb reorders and re-renders
    // details, and the hash must still recompute from what is read back.
    const details = [{ z: 1, a: { y: [3, 2, 1], b: null }, text: 'Größe € 😀', ratio: 0.1, big: 1e21 }, { max_vms: 10, storage_quota_gb: 100 }, {}];
    const appended = [];
    for (const [i, d] of details.entries()) {
      appended.push(
        await appendAuditEvent(service, newAuditEvent({ tenant_id: tenant, event_type: i === 0 ? 'TENANT_CREATED' : 'QUOTA_CHANGED', details: d })),
      );
    }

    const stored = await allEntries(service);
    expect(stored.map((e) => e.seq)).toEqual(['1', '2', '3']);
    expect(stored[0]!.prev_hash).toBe(GENESIS_HASH);
    for (let i = 1; i < stored.length; i += 1) expect(stored[i]!.prev_hash).toBe(stored[i - 1]!.hash);
    expect(stored.map((e) => e.hash)).toEqual(appended.map((e) => e.hash));
    expect(stored[0]!.details).toEqual(details[0]);
    expect(await verifyChain(service)).toEqual({
      valid: true,
      checked: 3,
      first_bad_seq: null,
      defect: null,
      reason: null,
      head: { seq: '3', event_id: stored[2]!.event_id, hash: stored[2]!.hash },
    });
  });

  test('when the ledger is empty, then verifyChain is valid with 0 entries checked', async () => {
    expect(await verifyChain(service)).toEqual({ valid: true, checked: 0, first_bad_seq: null, defect: null, reason: null, head: null });
  });

  test('when the same event_id is appended twice (a retry), then it is stored once and the stored entry is returned', async () => {
    const event = newAuditEvent({ tenant_id: 'acme-corp' });
    const first = await appendAuditEvent(service, event);
    const retried = await appendAuditEvent(service, { ...event, details: { different: true } });
    const [concurrentA, concurrentB] = await Promise.all([appendAuditEvent(service, event), appendAuditEvent(service, event)]);

    expect(retried).toEqual(first);
    expect(concurrentA).toEqual(first);
    expect(concurrentB).toEqual(first);
    const stored = await service.selectFrom('audit_events').selectAll().where('event_id', '=', event.event_id).execute();
    expect(stored).toHaveLength(1);
    expect((await verifyChain(service)).checked).toBe(1);
  });

  test.each([
    ['a repeat-checking append', {}],
    ['an append after its own transition', { afterOwnTransition: true }],
  ])('when two transactions append the same new event_id at once (%s), then the second waits for the first and answers its entry', async (_kind, options) => {
    const event = newAuditEvent({ tenant_id: 'acme-corp' });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const firstAppended = new Promise<void>((resolve) => (appended = resolve));
    const first = service.transaction().execute(async (trx) => {
      const row = await appendAuditEvent(trx, event, options);
      appended();
      await gate; // holds the chain lock and leaves the entry uncommitted
      return row;
    });
    await firstAppended;
    const second = service.transaction().execute((trx) => appendAuditEvent(trx, event, options));
    await sleep(200);
    release();
    const [a, b] = await Promise.all([first, second]);
    expect(b).toEqual(a);
    expect(await service.selectFrom('audit_events').select('event_id').where('event_id', '=', event.event_id).execute()).toHaveLength(1);
    expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 1 });
  });

  test("when 50 appends of five tenants run concurrently on a pool of 10 connections, then each tenant's entries form one linear chain in seq order", async () => {
    const events = Array.from({ length: 50 }, (_, i) => newAuditEvent({ tenant_id: `tenant-${i % 5}-x`, details: { i } }));
    const results = await Promise.all(events.map((event) => appendAuditEvent(service, event)));

    const stored = await allEntries(service);
    expect(stored.map((e) => Number(e.seq))).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(new Set(stored.map((e) => e.event_id))).toEqual(new Set(events.map((e) => e.event_id)));
    expect(new Set(results.map((e) => e.seq)).size).toBe(50);
    for (let t = 0; t < 5; t += 1) {
      const chain = stored.filter((e) => e.tenant_id === `tenant-${t}-x`);
      expect(chain.map((e) => Number(e.tenant_seq))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      chain.forEach((entry, i) => expect(entry.prev_hash).toBe(i === 0 ? GENESIS_HASH : chain[i - 1]!.hash));
    }
    expect(await verifyChain(service, 7)).toMatchObject({ valid: true, checked: 50, first_bad_seq: null, reason: null });
  });

  test('when the service role tries UPDATE, DELETE or TRUNCATE on audit_events, then each is refused for lack of privilege', async () => {
    await appendAuditEvent(service, newAuditEvent());

    const update = await refusal(sql`update audit_events set details = '{"x":1}'::jsonb`.execute(service));
    const del = await refusal(sql`delete from audit_events`.execute(service));
    const truncate = await refusal(sql`truncate audit_events`.execute(service));

    for (const error of [update, del, truncate]) {
      expect(error.code).toBe('42501');
      expect(error.message).toMatch(/permission denied for table audit_events/);
    }
    expect(await allEntries(admin)).toHaveLength(1);
  });

  test('when a superuser tries UPDATE, DELETE or TRUNCATE on audit_events, then the triggers refuse each', async () => {
    await appendAuditEvent(service, newAuditEvent());

    const update = await refusal(sql`update audit_events set details = '{"x":1}'::jsonb`.execute(admin));
    const del = await refusal(sql`delete from audit_events`.execute(admin));
    const truncate = await refusal(sql`truncate audit_events`.execute(admin));

    expect(update.message).toMatch(/audit_events is append-only: UPDATE refused/);
    expect(del.message).toMatch(/audit_events is append-only: DELETE refused/);
    expect(truncate.message).toMatch(/audit_events is append-only: TRUNCATE refused/);
    for (const error of [update, del, truncate]) expect(error.code).toBe('42501');
    expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 1 });
  });

  test('when a superuser alters an entry with the triggers disabled, then verifyChain reports that entry', async () => {
    for (let i = 0; i < 5; i += 1) await appendAuditEvent(service, newAuditEvent({ details: { i } }));

    await sql`alter table audit_events disable trigger user`.execute(admin);
    await sql`update audit_events set details = '{"i":99}'::jsonb where seq = 3`.execute(admin);
    await sql`alter table audit_events enable trigger user`.execute(admin);

    expect(await verifyChain(service)).toMatchObject({
      valid: false,
      checked: 2,
      first_bad_seq: '3',
      defect: 'rewrite',
      reason: 'hash does not match the entry content',
    });
  });

  test('when a superuser deletes an entry with the triggers disabled, then verifyChain reports the gap in its chain', async () => {
    // (Rolled-back appends leave gaps in seq since 2026_11_27_0007; a chain's tenant_seq has none.
    // A chain's newest entries cut off are a truncation, which only the checkpoints reveal.)
    for (let i = 0; i < 4; i += 1) await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', details: { i } }));

    await sql`alter table audit_events disable trigger user`.execute(admin);
    await sql`delete from audit_events where seq = 2`.execute(admin);
    await sql`alter table audit_events enable trigger user`.execute(admin);

    expect(await verifyChain(service)).toMatchObject({
      valid: false,
      first_bad_seq: '3',
      defect: 'gap',
      reason: 'the chain of tenant acme-corp: tenant_seq 3, expected 2',
    });
  });

  test('when a superuser rewrites a tenant chain link with the triggers disabled, then verifyChain names the tenant chain', async () => {
    for (let i = 0; i < 4; i += 1) await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', details: { i } }));

    await sql`alter table audit_events disable trigger user`.execute(admin);
    await sql`update audit_events set tenant_hash = ${'f'.repeat(64)} where seq = 4`.execute(admin);
    await sql`alter table audit_events enable trigger user`.execute(admin);

    expect(await verifyChain(service)).toMatchObject({
      valid: false,
      first_bad_seq: '4',
      defect: 'rewrite',
      reason: 'the chain of tenant acme-corp: tenant_hash does not match the entry content',
    });
  });

  test('when a superuser inserts an entry with seq -5 past the disabled triggers, then verifyChain names it a forged insert', async () => {
    for (let i = 0; i < 3; i += 1) await appendAuditEvent(service, newAuditEvent({ details: { i } }));

    await sql`alter table audit_events disable trigger user`.execute(admin);
    await sql`insert into audit_events (seq, event_id, tenant_id, event_type, occurred_at, details, prev_hash, hash, tenant_seq, tenant_prev_hash, tenant_hash)
              values (-5, gen_random_uuid(), 'acme-corp', 'TENANT_DELETED', '2020-01-01T00:00:00Z', '{}', ${'a'.repeat(64)}, ${'b'.repeat(64)}, -5, '', '')`.execute(
      admin,
    );
    await sql`alter table audit_events enable trigger user`.execute(admin);

    expect(await verifyChain(service)).toMatchObject({
      valid: false,
      checked: 0,
      first_bad_seq: '-5',
      defect: 'forged_insert',
      reason: 'sequence -5 is not a ledger sequence (they start at 1)',
    });
  });

  test('when a superuser inserts seq 0 with a made-up hash, then verifyChain names it a forged insert', async () => {
    await appendAuditEvent(service, newAuditEvent());
    await sql`alter table audit_events disable trigger user`.execute(admin);
    await sql`insert into audit_events (seq, event_id, event_type, occurred_at, details, prev_hash, hash, tenant_seq, tenant_prev_hash, tenant_hash)
              values (0, gen_random_uuid(), 'TENANT_DELETED', now(), '{}', ${GENESIS_HASH}, ${'b'.repeat(64)}, 0, '', '')`.execute(admin);
    await sql`alter table audit_events enable trigger user`.execute(admin);

    expect(await verifyChain(service)).toMatchObject({ valid: false, first_bad_seq: '0', defect: 'forged_insert' });
  });

  test('when listing with filters, then only matching entries come back in the requested order', async () => {
    const early = new Date('2026-06-14T09:00:00.000Z');
    const late = new Date('2026-06-14T10:00:00.000Z');
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', occurred_at: early }));
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp', vm_id: 'vm-1', event_type: 'VM_RUNNING', occurred_at: late }));
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex', occurred_at: late }));

    const acme = await listAuditEvents(service, { tenant_id: 'acme-corp', limit: 10, order: 'desc' });
    expect(acme.map((e) => e.seq)).toEqual(['2', '1']);
    const since = await listAuditEvents(service, { since: late, limit: 10 });
    expect(since.map((e) => e.seq)).toEqual(['2', '3']);
    const vm = await listAuditEvents(service, { vm_id: 'vm-1', event_type: 'VM_RUNNING', limit: 10 });
    expect(vm.map((e) => e.seq)).toEqual(['2']);
  });
});
