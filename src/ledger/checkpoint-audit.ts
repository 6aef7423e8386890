import type { KeyObject } from 'node:crypto';
import type { StoredCheckpoints } from './checkpoint-stream';
import type { StoredCheckpoint } from './checkpoint';
import { verifyCheckpointChain, type ChainReport, type LocalLast, type LocatedCheckpoint } from './checkpoint-chain';
import type { EntryTreeHead } from './entry-tree';
import { tenantTree, type TenantHead } from './tenant-tree';

/**
 * What comparing the ledger with the signed checkpoints can reveal:
 * - `truncation`: the ledger ends before a seq that was signed (newest entries cut off);
 * - `rewrite`: a signed entry is still at its seq but its hash differs (it, or an entry before
 *   it in its chain, was changed and the chain recomputed), the chain heads at the signed seq
 *   no longer give the signed Merkle root (an entry of another chain was changed, added or cut),
 *   or the entries up to the signed seq no longer give the signed entry tree (any field of any
 *   entry changed, the operator's source address included, or an entry added or removed);
 * - `forged_insert`: a signed entry now sits at a higher seq (entries were inserted before it);
 *   at a lower one, entries before it were deleted (reported as `truncation` of the history);
 * - `fork`: the checkpoints themselves describe two histories (one seq signed with two hashes, a
 *   later checkpoint below an earlier one, two links following one, a new series started on the
 *   stream, or a ledger that matches a later checkpoint but not an earlier one: it was rewritten
 *   and the signer went on signing the new branch);
 * - `forged_checkpoint`: a message on the checkpoint stream that the series' keys did not sign (a
 *   foreign message), named by its stream sequence;
 * - `missing_checkpoints`: checkpoints that are gone: the stream's first messages, the links a
 *   series follows, or the signer's last checkpoint (its state file).
 */
export type CheckpointDefect = 'truncation' | 'rewrite' | 'forged_insert' | 'fork' | 'forged_checkpoint' | 'missing_checkpoints';

export interface CheckpointFinding {
  defect: CheckpointDefect;
  message: string;
}

export interface CheckpointReport {
  /** Checkpoints signed by the series' keys, in the order they were stored (the signer's own last one after them). */
  checkpoints: StoredCheckpoint[];
  findings: CheckpointFinding[];
  warnings: string[];
  series: ChainReport['series'];
}

/** Read access to the ledger that the comparison needs. */
export interface LedgerLookup {
  /** The highest seq stored, or null for an empty ledger. */
  headSeq(): Promise<string | null>;
  /** Where the entry with this event id is stored now, if anywhere. */
  entryByEventId(eventId: string): Promise<{ seq: string; hash: string } | undefined>;
  /** Every tenant chain's head as of a global seq. */
  tenantHeadsAt(seq: string): Promise<TenantHead[]>;
  /** The entry tree (every entry, every field) as of each of these seqs. */
  entryTreesAt(seqs: readonly string[]): Promise<Map<string, EntryTreeHead>>;
}

const describe = (c: StoredCheckpoint): string => `the checkpoint signed at ${c.signed_at} (seq ${c.head.seq})`;

export async function auditCheckpoints(stored: StoredCheckpoints, publicKey: KeyObject, ledger: LedgerLookup, local?: LocalLast): Promise<CheckpointReport> {
  const chain = verifyCheckpointChain(stored.messages, stored.missingBefore, publicKey, local);
  const findings: CheckpointFinding[] = [...chain.findings];
  const located: LocatedCheckpoint[] = chain.checkpoints;
  const checkpoints = located.map((c) => c.checkpoint);

  // Do the checkpoints agree with each other?
  const bySeq = new Map<string, StoredCheckpoint>();
  let highest: StoredCheckpoint | null = null;
  for (const checkpoint of checkpoints) {
    const same = bySeq.get(checkpoint.head.seq);
    if (same && same.head.hash !== checkpoint.head.hash) {
      findings.push({
        defect: 'fork',
        message: `${describe(same)} and the one signed at ${checkpoint.signed_at} give seq ${checkpoint.head.seq} different hashes: two histories were signed`,
      });
    }
    bySeq.set(checkpoint.head.seq, checkpoint);
    if (highest && BigInt(checkpoint.head.seq) < BigInt(highest.head.seq)) {
      findings.push({
        defect: 'fork',
        message: `${describe(checkpoint)} is below ${describe(highest)}, signed before it: the ledger was cut back and grew again`,
      });
    }
    if (!highest || BigInt(checkpoint.head.seq) >= BigInt(highest.head.seq)) highest = checkpoint;
  }

  // Does the ledger still hold what was signed? null: yes; otherwise what happened to it.
  const head = await ledger.headSeq();
  const withinLedger = checkpoints.filter((c) => c.v === 2 && head !== null && BigInt(c.head.seq) <= BigInt(head)).map((c) => c.head.seq);
  const entryTrees = await ledger.entryTreesAt(withinLedger);
  const outcomes: Array<CheckpointFinding | null> = [];
  for (const checkpoint of checkpoints) outcomes.push(await compareWithLedger(checkpoint, head, ledger, entryTrees));
  outcomes.forEach((outcome, i) => {
    if (outcome === null) return;
    // A checkpoint signed later that the ledger does match: the signer itself went on from the
    // changed ledger, so the checkpoints describe two histories.
    const later = checkpoints.slice(i + 1).find((c, j) => outcomes[i + 1 + j] === null && BigInt(c.head.seq) >= BigInt(checkpoints[i]!.head.seq));
    findings.push(
      later
        ? {
            defect: 'fork',
            message: `the ledger matches ${describe(later)} but not ${describe(checkpoints[i]!)}: ${outcome.message}; the changed history was signed`,
          }
        : outcome,
    );
  });
  return { checkpoints, findings, warnings: chain.warnings, series: chain.series };
}

async function compareWithLedger(
  checkpoint: StoredCheckpoint,
  head: string | null,
  ledger: LedgerLookup,
  entryTrees: Map<string, EntryTreeHead>,
): Promise<CheckpointFinding | null> {
  const signed = BigInt(checkpoint.head.seq);
  if (head === null || BigInt(head) < signed) {
    return {
      defect: 'truncation',
      message: `the ledger ends at seq ${head ?? 0}, but ${describe(checkpoint)} covers seq ${checkpoint.head.seq}: entries were cut off`,
    };
  }
  const now = await ledger.entryByEventId(checkpoint.head.event_id);
  if (now === undefined) {
    return { defect: 'rewrite', message: `the entry signed by ${describe(checkpoint)} (event ${checkpoint.head.event_id}) is no longer in the ledger` };
  }
  const stored = BigInt(now.seq);
  if (stored > signed)
    return {
      defect: 'forged_insert',
      message: `the entry signed by ${describe(checkpoint)} is now at seq ${now.seq}: ${stored - signed} entries were inserted before it`,
    };
  if (stored < signed)
    return {
      defect: 'truncation',
      message: `the entry signed by ${describe(checkpoint)} is now at seq ${now.seq}: ${signed - stored} entries before it were deleted`,
    };
  if (now.hash !== checkpoint.head.hash)
    return {
      defect: 'rewrite',
      message: `seq ${checkpoint.head.seq} no longer has the hash signed by ${describe(checkpoint)}: it, or an entry before it, was changed`,
    };
  // The signed head's hash covers its own chain only (entries link within their chain): every
  // other chain up to the head is held by the Merkle root of the chain heads.
  const tree = tenantTree(await ledger.tenantHeadsAt(checkpoint.head.seq));
  if (tree.root !== checkpoint.root || tree.size !== checkpoint.tree_size) {
    return {
      defect: 'rewrite',
      message: `the tenant chain heads at seq ${checkpoint.head.seq} do not give the Merkle root signed by ${describe(checkpoint)}: a tenant chain was changed`,
    };
  }
  // Every field of every entry up to the head (version 2 on).
  const entries = checkpoint.v === 2 ? entryTrees.get(checkpoint.head.seq) : undefined;
  if (checkpoint.v === 2 && (entries?.size !== checkpoint.entries.size || entries.root !== checkpoint.entries.root)) {
    const count =
      entries?.size === checkpoint.entries.size ? `the same ${entries.size} entries` : `${entries?.size ?? '?'} entries, ${checkpoint.entries.size} signed`;
    return {
      defect: 'rewrite',
      message: `the entries up to seq ${checkpoint.head.seq} do not give the entry tree signed by ${describe(checkpoint)} (${count}): an entry was changed, added or removed`,
    };
  }
  return null;
}
