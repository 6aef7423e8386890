import path from 'node:path';
import type { Kysely } from 'kysely';
import type { JetStreamClient, JetStreamManager } from 'nats';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import { publishCheckpointLink } from './checkpoint-stream';
import { committedSeqHorizon } from './commit-horizon';
import { signCheckpoint, type StoredCheckpoint, type StoredCheckpointV2 } from './checkpoint';
import { loadCheckpointSigningKey, type CheckpointSigningKey } from './checkpoint-key';
import { checkpointLinkHash } from './checkpoint-link';
import { CheckpointSeriesRefusal, record, syncSeries, type RefusalCode, type SeriesContext, type SeriesPosition } from './checkpoint-series';
import { CHECKPOINT_STATE_FILE } from './checkpoint-state';
import { entryTreeHead } from './entry-tree';
import { appendEntryLeaves } from './entry-tree.repository';
import { chainHeadsAt, chainHeadsMoved, verifyChainFrom, type ChainHead } from './chain-verifier';
import { MerkleFrontier } from './merkle';
import { tenantTree } from './tenant-tree';

export interface CheckpointSignerOptions {
  db: Kysely<Database>;
  js: JetStreamClient;
  jsm: JetStreamManager;
  stream: string;
  subjectPrefix: string;
  key: CheckpointSigningKey;
  /** Sign when this many entries are unsigned, or when the oldest unsigned one waited everyMs. */
  everyEntries: number;
  everyMs: number;
  log: Logger;
  now?: () => Date;
  /** The signer's record of its series; default: ledger-checkpoint-last.json beside the key file. */
  stateFile?: string;
}

export type SignOutcome = { signed: StoredCheckpointV2 } | { withheld: string } | { idle: true } | { refused: string; code: RefusalCode };

const WITHHELD = 'ledger checkpoint withheld: the ledger does not extend the last signed checkpoint';

/**
 * Signs the ledger head at a cadence into the checkpoint series on the stream. Like a Certificate
 * Transparency log that only signs a tree consistent with its previous one, it signs only a head
 * that extends its last checkpoint: the signed entry and the signed chain heads must still be
 * there, the entries up to it must still give the signed entry tree (every field of every entry),
 * and the entries since must link to them and recompute. If they do not, the ledger was changed
 * under it; it withholds the checkpoint and logs an error, so a rewrite is never blessed.
 *
 * Each checkpoint names the link before it (checkpoint-series.ts has the rules by which the signer
 * knows it: its state file beside the key outranks the stream). When it cannot continue its series
 * (the stream lost its last link, the key was lost, replaced or rotated away, someone else signs
 * with the key) it stops with an error log naming the cause, instead of starting a new series.
 * Several replicas may run one each: a publish expects the subject's last message to be the one the
 * signer read, so only one extends each link, and the others adopt it.
 */
export class LedgerCheckpointSigner {
  private position: SeriesPosition | null = null;
  /** The entry tree up to the last checkpoint's head, once checked against it. */
  private entries: { seq: string; frontier: MerkleFrontier } | null = null;
  private entriesProblem: { seq: string; reason: string } | null = null;
  /**
   * Every chain's head at the last checkpoint's head, once they gave its signed tree: the next
   * round's walk resumes from them, and its tree is built from them and the entries since, so no
   * round reads the ledger below the last checkpoint (only a start, or adopting another replica's
   * checkpoint, reads every chain's head once).
   */
  private heads: { seq: string; byChain: Map<string, ChainHead> } | null = null;
  private refusal: CheckpointSeriesRefusal | null = null;
  private key: CheckpointSigningKey;
  /** When the last checkpoint was signed, or the signer started: the clock of the time cadence. */
  private lastSignedAt: number;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> | null = null;
  private readonly startedAt: Date;
  /** Since when the commit horizon could not be established (null: it could at the last try). */
  private starvedSince: number | null = null;

  constructor(private readonly options: CheckpointSignerOptions) {
    this.key = options.key;
    this.startedAt = this.now();
    this.lastSignedAt = this.startedAt.getTime();
  }

  /** The newest checkpoint of the series as the signer knows it, and how long it has been starved (checkpoint-freshness.ts). */
  status(): { checkpoint: StoredCheckpoint | null; startedAt: Date; starvedMs: number } {
    return {
      checkpoint: this.position?.checkpoint ?? null,
      startedAt: this.startedAt,
      starvedMs: this.starvedSince === null ? 0 : Math.max(0, this.now().getTime() - this.starvedSince),
    };
  }

  private now(): Date {
    return this.options.now ? this.options.now() : new Date();
  }

  private get series(): SeriesContext {
    const { jsm, stream, log } = this.options;
    return { jsm, stream, log, key: this.key, stateFile: this.options.stateFile ?? path.join(path.dirname(this.key.privateKeyFile), CHECKPOINT_STATE_FILE) };
  }

  /** Why the signer stopped, if it did. */
  get stopped(): { code: RefusalCode; reason: string } | null {
    return this.refusal ? { code: this.refusal.code, reason: this.refusal.message } : null;
  }

  start(): void {
    const period = Math.min(1000, this.options.everyMs);
    this.timer = setInterval(() => {
      this.ticking ??= this.signIfDue()
        .then((outcome) => {
          if ('refused' in outcome && this.timer) clearInterval(this.timer);
        })
        .catch((error: unknown) => this.options.log.warn({ err: error }, 'ledger checkpoint not signed; will retry'))
        .finally(() => (this.ticking = null));
    }, period);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
  }

  /** One round: signs the head when a checkpoint is due and the head extends the last one. */
  async signIfDue(): Promise<SignOutcome> {
    if (this.refusal) return { refused: this.refusal.message, code: this.refusal.code };
    try {
      const first = await this.round();
      if (!('conflict' in first)) return first;
      // Another signer extended the series (or a message arrived) meanwhile: catch up, try once more.
      const second = await this.round();
      return 'conflict' in second ? { idle: true } : second;
    } catch (error) {
      if (!(error instanceof CheckpointSeriesRefusal)) throw error;
      this.refusal = error;
      this.options.log.error({ code: error.code, stream: this.options.stream, reason: error.message }, `ledger checkpoint signer stopped: ${error.message}`);
      return { refused: error.message, code: error.code };
    }
  }

  private async round(): Promise<SignOutcome | { conflict: true }> {
    const { db, log } = this.options;
    const now = this.now();
    const position = (this.position ??= await syncSeries(this.series, null));
    await this.useActiveKey(position);
    const last = position.checkpoint;
    // Only what is final: below the commit horizon no entry can still appear (see commit-horizon.ts).
    const horizon = await committedSeqHorizon(db);
    if (horizon === null) {
      this.starvedSince ??= now.getTime();
      return { idle: true };
    }
    this.starvedSince = null;
    const top = await db.selectFrom('audit_events').select('seq').where('seq', '<=', horizon).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!top || top.seq === last?.head.seq) return { idle: true };
    const unsigned = BigInt(top.seq) - BigInt(last?.head.seq ?? '0');
    if (unsigned < BigInt(this.options.everyEntries) && now.getTime() - this.lastSignedAt < this.options.everyMs) return { idle: true };

    const reason = (await this.whyNotExtending(last)) ?? (await this.entryTreeProblem(last));
    if (reason !== null) return this.withhold(last, reason);
    // whyNotExtending left the heads at the last checkpoint in this.heads.
    const walked = await verifyChainFrom(db, last?.head ?? null, last === null ? new Map() : this.heads!.byChain, top.seq);
    const verdict = walked.verdict;
    if (!verdict.valid || verdict.head === null) return this.withhold(last, `entry seq ${verdict.first_bad_seq}: ${verdict.reason}`);
    const frontier = this.entries?.frontier.clone() ?? MerkleFrontier.empty();
    await appendEntryLeaves(db, frontier, last?.head.seq ?? null, verdict.head.seq);
    const tree = tenantTree([...walked.heads.values()]);
    const checkpoint = signCheckpoint(
      { head: verdict.head, tree, entries: entryTreeHead(frontier), previous: position.tip?.hash ?? null },
      this.key.privateKey,
      now,
    );
    const hash = checkpointLinkHash(checkpoint);
    const published = await publishCheckpointLink(this.options.js, this.options.stream, this.options.subjectPrefix, checkpoint, hash, position.expectLastSeq);
    if ('conflict' in published) {
      log.info({ stream: this.options.stream, reason: published.conflict }, 'ledger checkpoint stream moved on since it was read; catching up');
      this.position = await syncSeries(this.series, position);
      return { conflict: true };
    }
    if (position.tip === null)
      log.warn(
        { stream: this.options.stream, stream_seq: published.streamSeq, seq: checkpoint.head.seq },
        'ledger checkpoint series started: this is its genesis checkpoint',
      );
    const next: SeriesPosition = {
      tip: { kind: 'checkpoint', hash, checkpoint },
      tipStreamSeq: published.streamSeq,
      checkpoint,
      activeKeyId: this.key.keyId,
      expectLastSeq: published.streamSeq,
    };
    this.position = next;
    this.entries = { seq: checkpoint.head.seq, frontier };
    this.heads = { seq: checkpoint.head.seq, byChain: walked.heads };
    this.lastSignedAt = now.getTime();
    await record(this.series, next);
    return { signed: checkpoint };
  }

  private withhold(last: StoredCheckpoint | null, reason: string): SignOutcome {
    this.options.log.error({ last_checkpoint_seq: last?.head.seq ?? null, reason }, WITHHELD);
    return { withheld: reason };
  }

  /** After a rotation the series' key changes: the key file then holds the new key (rotate-checkpoint-key installs it). */
  private async useActiveKey(position: SeriesPosition): Promise<void> {
    if (position.activeKeyId === null || position.activeKeyId === this.key.keyId) return;
    const reloaded = await loadCheckpointSigningKey(this.key.privateKeyFile).catch(() => null);
    if (reloaded?.keyId !== position.activeKeyId) {
      throw new CheckpointSeriesRefusal(
        'key_retired',
        `the checkpoint series is now signed by key ${position.activeKeyId.slice(0, 16)} (a key rotation), but ${this.key.privateKeyFile} holds key ${(reloaded ?? this.key).keyId.slice(0, 16)}: install the new key and restart`,
      );
    }
    this.options.log.info({ key_id: reloaded.keyId }, 'ledger checkpoint signer signs with the rotated key');
    this.key = reloaded;
  }

  /** null when the signed entry is still where it was signed; otherwise what changed. */
  private async whyNotExtending(last: StoredCheckpoint | null): Promise<string | null> {
    if (last === null) return null;
    const { seq, event_id, hash } = last.head;
    const entry = await this.options.db.selectFrom('audit_events').select(['event_id', 'hash']).where('seq', '=', seq).executeTakeFirst();
    if (!entry) return `seq ${seq}, signed at ${last.signed_at}, is gone`;
    if (entry.event_id !== event_id || entry.hash !== hash) return `seq ${seq} no longer has the entry signed at ${last.signed_at}`;
    // The head's hash covers its own chain; the other chains are held by the signed tree.
    const changed = `the tenant chain heads at seq ${seq} no longer give the Merkle root signed at ${last.signed_at}`;
    if (this.heads?.seq === seq) {
      // Heads known to give the signed tree: each must still be its chain's last entry at or below
      // seq (one index probe per chain). A chain that appeared below seq since is not looked for
      // here; the entry tree, checked at every start, covers every entry (entryTreeProblem).
      return (await chainHeadsMoved(this.options.db, seq, this.heads.byChain)).length === 0 ? null : changed;
    }
    const byChain = await chainHeadsAt(this.options.db, seq);
    const tree = tenantTree([...byChain.values()]);
    if (tree.root !== last.root || tree.size !== last.tree_size) return changed;
    this.heads = { seq, byChain };
    return null;
  }

  /**
   * Builds the entry tree up to the last checkpoint's head (once; later rounds extend it) and
   * checks it against the signed one: null when it matches, or the last checkpoint predates the
   * entry tree (version 1). This is what catches a rewrite of any field of an old entry, the
   * operator's source address included, at the signer's start.
   */
  private async entryTreeProblem(last: StoredCheckpoint | null): Promise<string | null> {
    const seq = last?.head.seq ?? null;
    if (seq === null) {
      this.entries = null;
      return null;
    }
    if (this.entries?.seq === seq) return null;
    if (this.entriesProblem?.seq === seq) return this.entriesProblem.reason;
    const resume = this.entries !== null && BigInt(this.entries.seq) < BigInt(seq) ? this.entries : null;
    const frontier = resume?.frontier.clone() ?? MerkleFrontier.empty();
    await appendEntryLeaves(this.options.db, frontier, resume?.seq ?? null, seq);
    if (last!.v === 2) {
      const built = entryTreeHead(frontier);
      if (built.size !== last!.entries.size || built.root !== last!.entries.root) {
        const reason = `the entries up to seq ${seq} no longer give the entry tree signed at ${last!.signed_at} (${built.size} entries, signed ${last!.entries.size}): an entry was changed, added or removed`;
        this.entriesProblem = { seq, reason };
        return reason;
      }
    }
    this.entries = { seq, frontier };
    return null;
  }
}
