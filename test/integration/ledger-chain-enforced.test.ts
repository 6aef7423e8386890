import fc from 'fast-check';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { GENESIS_HASH } from '../../src/ledger/ledger-hash';
import { verifyChain } from '../../src/ledger/chain-verifier';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { GOLDEN_ENTRIES, GOLDEN_HASH_3_FIRST_OF_ITS_CHAIN, GOLDEN_HASHES, GOLDEN_TENANT_CHAIN } from '../fixtures/ledger-golden-vectors';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

async function refusal(query: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await query;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected the statement to be refused, but it succeeded');
}

let testDb: LedgerTestDatabase;
let service: Kysely<Database>;

beforeEach(async () => {
  testDb = await createLedgerTestDatabase('chain');
  service = testDb.serviceDb({ max: 4 });
});

afterEach(async () => {
  await testDb.drop();
});

describe('the chain is computed and enforced by the database', () => {
  test('when the golden entries are appended, then the database stores exactly the pinned hashes, each entry linked within its chain', async () => {
    // Inserted without seq, prev_hash and hash: the database computes them.
    for (const { seq: _seq, details, ...entry } of GOLDEN_ENTRIES) {
      await service
        .insertInto('audit_events')
        .values({ ...entry, details: JSON.stringify(details) })
        .execute();
    }
    const stored = await service
      .selectFrom('audit_events')
      .select(['seq', 'prev_hash', 'hash', 'tenant_seq', 'tenant_prev_hash', 'tenant_hash'])
      .orderBy('seq')
      .execute();
    expect(stored).toEqual([
      { seq: '1', prev_hash: GENESIS_HASH, hash: GOLDEN_HASHES[0], ...GOLDEN_TENANT_CHAIN[0] },
      { seq: '2', prev_hash: GOLDEN_HASHES[0], hash: GOLDEN_HASHES[1], ...GOLDEN_TENANT_CHAIN[1] },
      // The platform chain's first entry: linked to the genesis, not to acme-corp's entry 2.
      { seq: '3', prev_hash: GENESIS_HASH, hash: GOLDEN_HASH_3_FIRST_OF_ITS_CHAIN, ...GOLDEN_TENANT_CHAIN[2] },
    ]);
  });

  test('when arbitrary JSON details and text fields are appended, then the hash the database computed recomputes in Node', async () => {
    // No NUL (Postgres text cannot hold it) and no lone surrogate (not valid UTF-8).
    const text = fc.string({ unit: 'binary', maxLength: 12 }).filter((s) => !s.includes('\u0000') && !/[\uD800-\uDFFF]/u.test(s));
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        // Where ECMAScript switches between plain and exponent notation.
        fc.double({ min: 1e14, max: 1e22, noNaN: true }),
        fc.double({ min: 1e-8, max: 1e-5, noNaN: true }),
        fc.constantFrom(1e15, 1e16, 1e20, 1e21, 1e-6, 1e-7, 5e-324, Number.MAX_VALUE, -0, 0.1 + 0.2),
        fc.integer(),
        text,
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(text, tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(text, json, { maxKeys: 6 }), fc.option(text), fc.option(text), async (details, userAgent, vmId) => {
        await appendAuditEvent(service, newAuditEvent({ details: details as Record<string, unknown>, vm_id: vmId, context: { user_agent: userAgent } }));
      }),
      { numRuns: 150, seed: 9_221 },
    );
    expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 150 });
  });

  test('when the service login inserts the forged entry of issue 9 (seq -5, made-up hashes), then the database refuses it', async () => {
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
    const forged = await refusal(
      sql`insert into audit_events (seq, event_id, tenant_id, event_type, occurred_at, details, prev_hash, hash)
          values (-5, gen_random_uuid(), 'acme-corp', 'TENANT_DELETED', '2020-01-01T00:00:00Z', '{}', ${'a'.repeat(64)}, ${'b'.repeat(64)})`.execute(service),
    );
    expect(forged).toMatchObject({ code: '23514', message: 'audit_events: seq -5 does not extend the chain (the next seq is 2)' });
    expect(await service.selectFrom('audit_events').select('seq').execute()).toEqual([{ seq: '1' }]);
  });

  test("when the service login names a seq, prev_hash or hash other than its chain head's successor, then each insert is refused", async () => {
    const head = await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
    const insert = (chain: { seq?: string; prev_hash?: string; hash?: string }) =>
      refusal(
        service
          .insertInto('audit_events')
          .values({
            event_id: newAuditEvent().event_id,
            tenant_id: 'acme-corp',
            event_type: 'TENANT_DELETED',
            occurred_at: new Date(),
            details: '{}',
            ...chain,
          })
          .execute(),
      );

    // seq comes from a sequence: each refused insert used up one number (2, 3, 4, …).
    expect(await insert({ seq: '3' })).toMatchObject({ code: '23514', message: 'audit_events: seq 3 does not extend the chain (the next seq is 2)' });
    expect(await insert({ seq: '1' })).toMatchObject({ code: '23514', message: 'audit_events: seq 1 does not extend the chain (the next seq is 3)' });
    expect(await insert({ prev_hash: GENESIS_HASH })).toMatchObject({
      code: '23514',
      message: expect.stringMatching(/prev_hash is not the hash of the chain head/),
    });
    expect(await insert({ prev_hash: head.hash, hash: 'c'.repeat(64) })).toMatchObject({
      code: '23514',
      message: 'audit_events: hash does not match the entry content',
    });
    expect(await service.selectFrom('audit_events').select('seq').execute()).toEqual([{ seq: '1' }]);
  });

  test('when 60 appends of five tenants and the platform run concurrently, then every tenant chain runs 1..n, linked, and verifies', async () => {
    const tenants = ['t-a', 't-b', 't-c', 't-d', 't-e', null];
    await Promise.all(Array.from({ length: 60 }, (_, i) => appendAuditEvent(service, newAuditEvent({ tenant_id: tenants[i % 6]!, details: { i } }))));
    const rows = await service.selectFrom('audit_events').selectAll().orderBy('seq').execute();
    for (const tenant of tenants) {
      const chain = rows.filter((r) => r.tenant_id === tenant);
      expect(chain.map((r) => Number(r.tenant_seq))).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
      chain.forEach((r, i) => expect(r.tenant_prev_hash).toBe(i === 0 ? GENESIS_HASH : chain[i - 1]!.tenant_hash));
    }
    expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 60 });
  });

  test("when the service login names a tenant_seq, tenant_prev_hash or tenant_hash other than its tenant chain's next, then each insert is refused", async () => {
    const head = await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex' }));
    const insert = (chain: { tenant_seq?: string; tenant_prev_hash?: string; tenant_hash?: string }) =>
      refusal(
        service
          .insertInto('audit_events')
          .values({
            event_id: newAuditEvent().event_id,
            tenant_id: 'acme-corp',
            event_type: 'TENANT_DELETED',
            occurred_at: new Date(),
            details: '{}',
            ...chain,
          })
          .execute(),
      );

    expect(await insert({ tenant_seq: '3' })).toMatchObject({
      code: '23514',
      message: 'audit_events: tenant_seq 3 does not extend the tenant chain (the next is 2)',
    });
    expect(await insert({ tenant_seq: '2', tenant_prev_hash: GENESIS_HASH })).toMatchObject({
      code: '23514',
      message: expect.stringMatching(/tenant_prev_hash is not the hash of the tenant chain head/),
    });
    expect(await insert({ tenant_seq: '2', tenant_prev_hash: head.tenant_hash, tenant_hash: 'c'.repeat(64) })).toMatchObject({
      code: '23514',
      message: 'audit_events: tenant_hash does not match the entry content',
    });
  });

  test("when the service login inserts a row without chain fields, then the database links it to its chain's head and it verifies", async () => {
    await appendAuditEvent(service, newAuditEvent({ tenant_id: 'globex' }));
    const head = await appendAuditEvent(service, newAuditEvent({ tenant_id: 'acme-corp' }));
    const row = await service
      .insertInto('audit_events')
      .values({
        event_id: newAuditEvent().event_id,
        tenant_id: 'acme-corp',
        event_type: 'TENANT_DELETED',
        occurred_at: new Date('2020-01-01T00:00:00.123456Z'),
        details: '{"b":1,"a":[1.50,2]}',
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ seq: '3', prev_hash: head.hash, tenant_seq: '2', tenant_prev_hash: head.tenant_hash });
    expect(await verifyChain(service)).toMatchObject({ valid: true, checked: 3, head: { seq: '3', event_id: row.event_id, hash: row.hash } });
  });
});
