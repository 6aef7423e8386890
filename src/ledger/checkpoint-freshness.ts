import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';

/** What freshness needs of a checkpoint: when it was signed and which entry it covers. */
export interface SignedHead {
  signed_at: string;
  head: { seq: string };
}

/** Entries counted as unsigned at most: enough to tell "behind", cheap however far behind. */
export const UNSIGNED_ENTRIES_COUNTED = 100_000;

/**
 * How far the ledger's anchoring lags: the age of the newest checkpoint, and the committed entries
 * it does not cover. An old checkpoint alone is no alarm (an idle ledger gets no new checkpoints);
 * an old checkpoint with entries waiting is: the checkpoints are stale.
 */
export interface CheckpointFreshness {
  /** When the newest checkpoint was signed; null before the first. */
  signed_at: string | null;
  /** Seconds since then; before the first checkpoint, since `since` (the signer's start). */
  age_seconds: number;
  /** Committed entries after the newest checkpoint's head (at most UNSIGNED_ENTRIES_COUNTED). */
  unsigned_entries: number;
  /** Older than three signing periods with entries waiting: what the alert rule fires on. */
  stale: boolean;
}

export async function checkpointFreshness(
  db: Kysely<Database>,
  { checkpoint, since, now, periodMs }: { checkpoint: SignedHead | null; since: Date; now: Date; periodMs: number },
): Promise<CheckpointFreshness> {
  const { rows } = await sql<{ unsigned: number }>`
    select count(*)::int as unsigned from (
      select 1 from audit_events where seq > ${checkpoint?.head.seq ?? '0'}::bigint limit ${UNSIGNED_ENTRIES_COUNTED}) as waiting`.execute(db);
  const unsigned = rows[0]!.unsigned;
  const from = checkpoint ? Date.parse(checkpoint.signed_at) : since.getTime();
  const ageMs = Math.max(0, now.getTime() - from);
  return { signed_at: checkpoint?.signed_at ?? null, age_seconds: ageMs / 1000, unsigned_entries: unsigned, stale: unsigned > 0 && ageMs > 3 * periodMs };
}

/** The checkpoint signer's liveness: the freshness of its newest checkpoint, and how long it has been starved. */
export interface SignerLiveness {
  freshness: CheckpointFreshness;
  starved_seconds: number;
}

/** What the signer tells of itself (LedgerCheckpointSigner.status). */
export interface SignerStatusSource {
  status(): { checkpoint: SignedHead | null; startedAt: Date; starvedMs: number };
}

/** Reads the signer's liveness now; the worker's metrics call it at every scrape. */
export function signerLiveness(
  db: Kysely<Database>,
  signer: SignerStatusSource,
  periodMs: number,
  now: () => Date = () => new Date(),
): () => Promise<SignerLiveness> {
  return async () => {
    const { checkpoint, startedAt, starvedMs } = signer.status();
    return { freshness: await checkpointFreshness(db, { checkpoint, since: startedAt, now: now(), periodMs }), starved_seconds: starvedMs / 1000 };
  };
}
