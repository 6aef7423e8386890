import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { entryLeafHash, entryTreeHead, type EntryTreeHead } from './entry-tree';
import { MerkleFrontier } from './merkle';

/**
 * Appends to `frontier` the leaf of every entry with `afterSeq < seq <= upToSeq` (afterSeq null:
 * from the first row, whatever its number: a forged row below 1 is a leaf too), in seq order,
 * batch by batch. Calls `at` after the last entry at or below each seq of `marks` (ascending).
 */
export async function appendEntryLeaves(
  db: Kysely<Database>,
  frontier: MerkleFrontier,
  afterSeq: string | null,
  upToSeq: string,
  { batchSize = 1000, marks = [], at }: { batchSize?: number; marks?: readonly string[]; at?: (seq: string, head: EntryTreeHead) => void } = {},
): Promise<void> {
  let after = afterSeq;
  let next = 0;
  const pass = (seq: bigint | null) => {
    while (next < marks.length && (seq === null || BigInt(marks[next]!) < seq)) {
      at?.(marks[next]!, entryTreeHead(frontier));
      next += 1;
    }
  };
  for (;;) {
    let q = db.selectFrom('audit_events').selectAll().where('seq', '<=', upToSeq).orderBy('seq', 'asc').limit(batchSize);
    if (after !== null) q = q.where('seq', '>', after);
    const rows = await q.execute();
    for (const row of rows) {
      pass(BigInt(row.seq));
      frontier.append(entryLeafHash(row));
    }
    if (rows.length < batchSize) break;
    after = rows[rows.length - 1]!.seq;
  }
  pass(null);
}

/** The entry tree (size and root) as of each of these seqs, in one pass over the ledger. */
export async function entryTreeHeadsAt(db: Kysely<Database>, seqs: readonly string[]): Promise<Map<string, EntryTreeHead>> {
  const marks = [...new Set(seqs)].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0));
  const heads = new Map<string, EntryTreeHead>();
  if (marks.length === 0) return heads;
  await appendEntryLeaves(db, MerkleFrontier.empty(), null, marks[marks.length - 1]!, { marks, at: (seq, head) => heads.set(seq, head) });
  return heads;
}
