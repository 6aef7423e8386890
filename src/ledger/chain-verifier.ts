import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { entryHash, GENESIS_HASH, tenantEntryHash } from './ledger-hash';

/**
 * What is wrong with the stored chain, by kind:
 * - `forged_insert`: an entry the chain cannot hold (a sequence <= 0);
 * - `gap`: a sequence number is missing where numbers are continuous (entries deleted from the
 *   middle of a chain, or from the global chain up to ledger_global_chain_end);
 * - `rewrite`: an entry's content no longer matches its hash, or its prev_hash no longer names the
 *   entry before it (an entry changed, or entries recomputed from some point on).
 */
export type ChainDefect = 'forged_insert' | 'gap' | 'rewrite';

export interface ChainVerdict {
  valid: boolean;
  checked: number;
  first_bad_seq: string | null;
  defect: ChainDefect | null;
  reason: string | null;
  /** The last entry that verified: what a checkpoint may sign. */
  head: ChainAnchor | null;
}

/** A verified entry of the chain: where a walk resumes, and what a checkpoint signs. */
export interface ChainAnchor {
  seq: string;
  event_id: string;
  hash: string;
}

/**
 * The last entry of the single global chain: after it, an entry's prev_hash links to the previous
 * entry of its own chain (migration 2026_11_27_0007), and seq may have gaps (rolled-back appends).
 */
export async function globalChainEnd(db: Kysely<Database>): Promise<bigint> {
  const { rows } = await sql<{ seq: string }>`select seq from ledger_global_chain_end`.execute(db);
  return BigInt(rows[0]?.seq ?? '0');
}

/**
 * A chain's last entry: where a walk resumes the chain (its tenant_seq and hashes), and, as
 * tenant_id, tenant_seq and tenant_hash, the head a checkpoint's tree of chain heads holds.
 */
export interface ChainHead {
  tenant_id: string | null;
  seq: string;
  event_id: string;
  tenant_seq: string;
  tenant_hash: string;
  hash: string;
}

/** The key of an entry's chain in a map of heads: its tenant id, or '' for the platform chain. */
export const chainKey = (tenantId: string | null): string => tenantId ?? '';

/**
 * Every chain's last entry at or below `seq`, by chainKey. One DISTINCT ON read of the whole ledger
 * up to `seq`: what a walk from an anchor needs when nothing is known yet (a checkpoint signer's
 * start); a signer that keeps its heads extends them with verifyChainFrom instead.
 */
export async function chainHeadsAt(db: Kysely<Database>, seq: string): Promise<Map<string, ChainHead>> {
  const { rows } = await sql<ChainHead>`
    select distinct on (coalesce(tenant_id, '')) tenant_id, seq::text as seq, event_id, tenant_seq::text as tenant_seq, tenant_hash, hash
      from audit_events where seq <= ${seq} and seq > 0
     order by coalesce(tenant_id, ''), seq desc`.execute(db);
  return new Map(rows.map((r) => [chainKey(r.tenant_id), r]));
}

/**
 * The chains among `heads` whose last entry at or below `atSeq` is no longer that head: it changed
 * (any of its seq, event id, tenant_seq or hashes), it is gone, or another entry of the chain now
 * stands after it at or below `atSeq`. One statement of one index probe per chain
 * (audit_events_tenant_idx), whatever the size of the ledger. A chain that was not among `heads` is
 * not looked for.
 */
export async function chainHeadsMoved(db: Kysely<Database>, atSeq: string, heads: ReadonlyMap<string, ChainHead>): Promise<string[]> {
  if (heads.size === 0) return [];
  const list = [...heads.entries()];
  const { rows } = await sql<{ chain: string }>`
    select h.chain
      from unnest(${list.map(([chain]) => chain)}::text[], ${list.map(([, h]) => h.seq)}::bigint[], ${list.map(([, h]) => h.event_id)}::text[],
                  ${list.map(([, h]) => h.tenant_seq)}::bigint[], ${list.map(([, h]) => h.tenant_hash)}::text[], ${list.map(([, h]) => h.hash)}::text[])
             as h(chain, seq, event_id, tenant_seq, tenant_hash, hash)
      left join lateral (
             (select a.seq, a.event_id::text as event_id, a.tenant_seq, a.tenant_hash, a.hash from audit_events a
               where h.chain <> '' and a.tenant_id = h.chain and a.seq <= ${atSeq} and a.seq > 0 order by a.seq desc limit 1)
             union all
             (select a.seq, a.event_id::text, a.tenant_seq, a.tenant_hash, a.hash from audit_events a
               where h.chain = '' and a.tenant_id is null and a.seq <= ${atSeq} and a.seq > 0 order by a.seq desc limit 1)
           ) as last on true
     where last.seq is distinct from h.seq or last.event_id is distinct from h.event_id or last.tenant_seq is distinct from h.tenant_seq
        or last.tenant_hash is distinct from h.tenant_hash or last.hash is distinct from h.hash`.execute(db);
  return rows.map((r) => r.chain);
}

/**
 * Walks the ledger in seq order and reports the first entry whose sequence, link or hash does not
 * match. From the start it begins below 1 on purpose: a row with seq <= 0 is a forgery, not
 * something to skip. Up to ledger_global_chain_end entries form one global chain (continuous seq,
 * prev_hash = the previous entry's hash); after it each entry's prev_hash is the hash of the
 * previous entry of its own chain. Every chain's tenant_seq runs 1, 2, 3, … and links. From an
 * anchor (an entry verified before, e.g. the last checkpoint) it checks only what follows, each
 * chain resuming from its stored entry at or below the anchor. `upTo` stops the walk there (the
 * commit horizon: entries above it may still be joined by lower ones).
 */
export async function verifyChain(db: Kysely<Database>, batchSize = 1000, from?: ChainAnchor, upTo?: string): Promise<ChainVerdict> {
  const chains = from ? await chainHeadsAt(db, from.seq) : new Map<string, ChainHead>();
  return (await walkChain(db, batchSize, from, upTo, chains)).verdict;
}

/**
 * verifyChain from `from` (null: from the start) up to `upTo`, for a caller that already holds every
 * chain's head at `from` (`heads`, as chainHeadsAt gives them, or as an earlier call returned them):
 * no read of the ledger below the anchor. Answers the verdict and every chain's head at the
 * verdict's head (a new map; `heads` is left as it was).
 */
export async function verifyChainFrom(
  db: Kysely<Database>,
  from: ChainAnchor | null,
  heads: ReadonlyMap<string, ChainHead>,
  upTo: string,
  batchSize = 1000,
): Promise<{ verdict: ChainVerdict; heads: Map<string, ChainHead> }> {
  return walkChain(db, batchSize, from ?? undefined, upTo, new Map(heads));
}

async function walkChain(
  db: Kysely<Database>,
  batchSize: number,
  from: ChainAnchor | undefined,
  upTo: string | undefined,
  chains: Map<string, ChainHead>,
): Promise<{ verdict: ChainVerdict; heads: Map<string, ChainHead> }> {
  const chainEnd = await globalChainEnd(db);
  let prevHash = from?.hash ?? GENESIS_HASH;
  let expectedSeq = from ? BigInt(from.seq) + 1n : 1n;
  let checked = 0;
  let after: string | null = from?.seq ?? null;
  let head: ChainVerdict['head'] = from ?? null;
  for (;;) {
    let q = db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').limit(batchSize);
    if (after !== null) q = q.where('seq', '>', after);
    if (upTo !== undefined) q = q.where('seq', '<=', upTo);
    const rows = await q.execute();
    if (rows.length === 0) return { verdict: { valid: true, checked, first_bad_seq: null, defect: null, reason: null, head }, heads: chains };
    for (const row of rows) {
      const bad = (defect: ChainDefect, reason: string) => ({
        verdict: { valid: false, checked, first_bad_seq: row.seq, defect, reason, head },
        heads: chains,
      });
      const seq = BigInt(row.seq);
      if (seq <= 0n) return bad('forged_insert', `sequence ${row.seq} is not a ledger sequence (they start at 1)`);
      const chain = row.tenant_id ?? '';
      const stored = chains.get(chain);
      const link = { tenant_seq: BigInt(stored?.tenant_seq ?? 0), tenant_hash: stored?.tenant_hash ?? GENESIS_HASH, hash: stored?.hash ?? GENESIS_HASH };
      const name = row.tenant_id === null ? 'the platform chain' : `the chain of tenant ${row.tenant_id}`;
      if (seq <= chainEnd) {
        if (seq !== expectedSeq) return bad('gap', `sequence gap: expected ${expectedSeq}`);
        if (row.prev_hash !== prevHash) return bad('rewrite', 'prev_hash does not match the previous entry');
      }
      if (BigInt(row.tenant_seq) !== link.tenant_seq + 1n) return bad('gap', `${name}: tenant_seq ${row.tenant_seq}, expected ${link.tenant_seq + 1n}`);
      if (seq > chainEnd && row.prev_hash !== link.hash) return bad('rewrite', `${name}: prev_hash does not match its previous entry`);
      if (entryHash(row.prev_hash, row) !== row.hash) return bad('rewrite', 'hash does not match the entry content');
      if (row.tenant_prev_hash !== link.tenant_hash) return bad('rewrite', `${name}: tenant_prev_hash does not match its previous entry`);
      if (tenantEntryHash(link.tenant_hash, row) !== row.tenant_hash) return bad('rewrite', `${name}: tenant_hash does not match the entry content`);
      chains.set(chain, {
        tenant_id: row.tenant_id,
        seq: row.seq,
        event_id: row.event_id,
        tenant_seq: (link.tenant_seq + 1n).toString(),
        tenant_hash: row.tenant_hash,
        hash: row.hash,
      });
      prevHash = row.hash;
      expectedSeq = seq + 1n;
      checked += 1;
      head = { seq: row.seq, event_id: row.event_id, hash: row.hash };
    }
    after = rows[rows.length - 1]!.seq;
  }
}
