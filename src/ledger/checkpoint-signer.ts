import type { Kysely } from 'kysely';
import type { JetStreamClient, JetStreamManager } from 'nats';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import { publishCheckpoint, readLastCheckpointText } from '../events/checkpoint-stream';
import { committedSeqHorizon } from './commit-horizon';
import { signCheckpoint, verifyCheckpoint, type StoredCheckpoint } from './checkpoint';
import { tenantTree } from './tenant-tree';
import type { CheckpointSigningKey } from './checkpoint-key';
import { tenantHeadsAt, verifyChain } from './ledger.repository';

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
}

export type SignOutcome = { signed: StoredCheckpoint } | { withheld: string } | { idle: true };

/**
 * Signs the ledger head at a cadence and publishes it to the checkpoint stream. Like a Certificate
 * Transparency log that only signs a tree consistent with its previous one, it signs only a head
 * that extends its last checkpoint: the signed entry and the signed chain heads must still be
 * there, and the entries since then must link to them and recompute. If they do not, the ledger was changed under it; it withholds the checkpoint and logs
 * an error, so a rewrite is never blessed. Its last checkpoint is read back from the stream on
 * start, so a restart does not forget what it signed. Several workers may run one each: they sign
 * the same heads, and the stream keeps one message per seq.
 */
export class LedgerCheckpointSigner {
  private last: StoredCheckpoint | null | undefined;
  /** When the last checkpoint was signed, or the signer started: the clock of the time cadence. */
  private lastSignedAt: number;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> | null = null;

  constructor(private readonly options: CheckpointSignerOptions) {
    this.lastSignedAt = this.now().getTime();
  }

  private now(): Date {
    return this.options.now ? this.options.now() : new Date();
  }

  start(): void {
    const period = Math.min(1000, this.options.everyMs);
    this.timer = setInterval(() => {
      this.ticking ??= this.signIfDue()
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
    const { db, log } = this.options;
    const now = this.now();
    const last = await this.lastCheckpoint();
    // Only what is final: below the commit horizon no entry can still appear (see commit-horizon.ts).
    const horizon = await committedSeqHorizon(db);
    if (horizon === null) return { idle: true };
    const top = await db.selectFrom('audit_events').select('seq').where('seq', '<=', horizon).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    if (!top || top.seq === last?.head.seq) return { idle: true };
    const unsigned = BigInt(top.seq) - BigInt(last?.head.seq ?? '0');
    if (unsigned < BigInt(this.options.everyEntries) && now.getTime() - this.lastSignedAt < this.options.everyMs) return { idle: true };

    const reason = await this.whyNotExtending(last);
    if (reason !== null) {
      log.error({ last_checkpoint_seq: last?.head.seq ?? null, reason }, 'ledger checkpoint withheld: the ledger does not extend the last signed checkpoint');
      return { withheld: reason };
    }
    const verdict = await verifyChain(db, 1000, last?.head, top.seq);
    if (!verdict.valid || verdict.head === null) {
      const why = `entry seq ${verdict.first_bad_seq}: ${verdict.reason}`;
      log.error({ last_checkpoint_seq: last?.head.seq ?? null, reason: why }, 'ledger checkpoint withheld: the ledger does not extend the last signed checkpoint');
      return { withheld: why };
    }
    const tree = tenantTree(await tenantHeadsAt(db, verdict.head.seq));
    const checkpoint = signCheckpoint(verdict.head, tree, this.options.key.privateKey, now);
    await publishCheckpoint(this.options.js, this.options.subjectPrefix, checkpoint);
    this.last = checkpoint;
    this.lastSignedAt = now.getTime();
    return { signed: checkpoint };
  }

  private async lastCheckpoint(): Promise<StoredCheckpoint | null> {
    if (this.last !== undefined) return this.last;
    const text = await readLastCheckpointText(this.options.jsm, this.options.stream, this.options.subjectPrefix);
    const verified = text === null ? null : verifyCheckpoint(text, this.options.key.publicKey);
    if (text !== null && verified === null) {
      // Another key signed it (the key was replaced) or it is forged: start a new series from the
      // genesis, which re-verifies the whole chain. `service-fs verify` reports the foreign message.
      this.options.log.warn({ stream: this.options.stream }, 'the last message on the checkpoint stream is not signed by this key');
    }
    this.last = verified;
    return verified;
  }

  /** null when the signed entry is still where it was signed; otherwise what changed. */
  private async whyNotExtending(last: StoredCheckpoint | null): Promise<string | null> {
    if (last === null) return null;
    const { seq, event_id, hash } = last.head;
    const entry = await this.options.db.selectFrom('audit_events').select(['event_id', 'hash']).where('seq', '=', seq).executeTakeFirst();
    if (!entry) return `seq ${seq}, signed at ${last.signed_at}, is gone`;
    if (entry.event_id !== event_id || entry.hash !== hash) return `seq ${seq} no longer has the entry signed at ${last.signed_at}`;
    // The head's hash covers its own chain; the other chains are held by the signed tree.
    const tree = tenantTree(await tenantHeadsAt(this.options.db, seq));
    if (tree.root !== last.root || tree.size !== last.tree_size) return `the tenant chain heads at seq ${seq} no longer give the Merkle root signed at ${last.signed_at}`;
    return null;
  }
}
