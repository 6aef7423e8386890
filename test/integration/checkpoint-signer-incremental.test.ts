/**
 * The checkpoint signer keeps every chain's head from one checkpoint to the next (issue 20): after
 * its first checkpoint no round reads the ledger below the last checkpoint (no DISTINCT ON over the
 * whole ledger), each tree it signs is still exactly the tree read from the whole ledger, and the
 * heads it keeps are checked against the database every round, so a chain head changed under it is
 * still refused.
 */
import { randomUUID } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../../src/db/tables';
import { ensureCheckpointSigningKey, type CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import type { LedgerCheckpointSigner, SignOutcome } from '../../src/ledger/checkpoint-signer';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { tenantHeadsAt } from '../../src/ledger/ledger-queries';
import { tenantTree } from '../../src/ledger/tenant-tree';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { useCheckpointWorld } from '../helpers/checkpoint-world';
import { withTriggersDisabled } from '../helpers/ledger-tampering';

const world = useCheckpointWorld({ label: 'checkpoint_incremental' });
let service: Kysely<Database>;
let signerDb: Kysely<Database>;
let key: CheckpointSigningKey;
let signer: LedgerCheckpointSigner;
/** Every statement the signer ran, as SQL text. */
const statements: string[] = [];

beforeEach(async () => {
  ({ service } = world);
  statements.length = 0;
  signerDb = new Kysely<Database>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: world.testDb.serviceUrl, max: 2 }) }),
    log: (event) => void statements.push(event.query.sql),
  });
  world.afterThisTest(() => signerDb.destroy());
  key = await ensureCheckpointSigningKey(world.keyDir);
  signer = world.signer(key, { db: signerDb });
});

const TENANTS = ['acme-corp', 'globex', 'initech', null] as const;

async function appendFor(tenantId: string | null): Promise<void> {
  await appendAuditEvent(service, newAuditEvent({ tenant_id: tenantId, details: { n: randomUUID() } }));
}

const readsEveryHead = (text: string) => /distinct on/i.test(text);

describe('the checkpoint signer extends its chain heads instead of reading the whole ledger', () => {
  test('when the signer signs checkpoint after checkpoint over several chains, then each tree is the one the whole ledger gives, and after its first no round reads every head', async () => {
    const signed: SignOutcome[] = [];
    for (let i = 0; i < 30; i += 1) {
      // Uneven: some chains grow between checkpoints, others do not; some rounds find nothing to do.
      await appendFor(TENANTS[(i * 7) % 3 === 0 ? 3 : i % 3]!);
      if (i === 3) statements.length = 0;
      signed.push(await signer.signIfDue());
    }
    const checkpoints = signed.flatMap((outcome) => ('signed' in outcome ? [outcome.signed] : []));
    expect(checkpoints.length).toBeGreaterThanOrEqual(8);
    for (const checkpoint of checkpoints) {
      const fromLedger = tenantTree(await tenantHeadsAt(service, checkpoint.head.seq));
      expect({ seq: checkpoint.head.seq, root: checkpoint.root, size: checkpoint.tree_size }).toEqual({
        seq: checkpoint.head.seq,
        root: fromLedger.root,
        size: fromLedger.size,
      });
    }
    // The first checkpoint (i = 2) was signed before the count started; every later round ran none.
    expect(statements.filter(readsEveryHead)).toEqual([]);
    expect(statements.length).toBeGreaterThan(0);
  });

  test("when an owner slips an entry into a rolled-back append's seq below the last checkpoint, then the same signer withholds the next checkpoint", async () => {
    await appendFor('acme-corp');
    await appendFor('globex');
    // A rolled-back append leaves its seq unused: a gap below the coming checkpoint.
    await service
      .transaction()
      .execute(async (trx) => {
        await appendAuditEvent(trx, newAuditEvent({ tenant_id: 'acme-corp' }));
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await appendFor('globex');
    await appendFor('globex');
    const first = await signer.signIfDue();
    expect(first).toMatchObject({ signed: { head: { seq: '5' } } });
    const gap = await sql<{
      seq: string;
    }>`select s::text as seq from generate_series(1, 5) s where not exists (select 1 from audit_events where seq = s)`.execute(service);
    expect(gap.rows.map((r) => r.seq)).toEqual(['3']);

    // acme-corp's chain at seq 5 now ends in a forged entry; nothing at or after the signed head changed.
    await withTriggersDisabled(world.testDb.adminDb(), async (trx) => {
      await sql`insert into audit_events (seq, event_id, tenant_id, event_type, occurred_at, details, prev_hash, hash, tenant_seq, tenant_prev_hash, tenant_hash)
                select 3, ${randomUUID()}, 'acme-corp', 'TENANT_DELETED', now(), '{}', hash, hash, tenant_seq + 1, tenant_hash, tenant_hash
                  from audit_events where seq = 1`.execute(trx);
    });
    for (let i = 0; i < 3; i += 1) await appendFor('globex');
    expect(await signer.signIfDue()).toEqual({ withheld: expect.stringMatching(/^the tenant chain heads at seq 5 no longer give the Merkle root signed at /) });
  });
});
