import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { CheckpointNotFoundError, InvalidInputError, LedgerAnchorUnavailableError, NotAnchoredYetError } from '../shared/domain-errors';
import { toAuditEntry, toTenantAuditEntry, type AuditEntry, type TenantAuditEntry } from './audit-entry';
import type { StoredCheckpoint } from './checkpoint';
import { findAuditSeq, listAuditEvents, type AuditQuery } from './ledger-queries';
import { buildTenantProof, type TenantProof } from './tenant-proof';
import { tenantLinkHash, type TenantLink } from './tenant-link';

/** The newest checkpoint the worker signed, verified with its public key; null when there is none. */
export type LatestCheckpointSource = () => Promise<StoredCheckpoint | null>;

/** The series of checkpoints by link hash (CheckpointSeriesIndex): what a tenant asks a proof against, and what it follows. */
export interface CheckpointSeriesSource {
  after(linkHash: string | null, limit: number): Promise<{ links: TenantLink[]; more: boolean } | null>;
  checkpoint(linkHash: string): Promise<StoredCheckpoint | null>;
}

/** Whose entries a reader reads: one tenant's chain (a tenant token, or the admin filtering), or every entry (the admin). */
export type AuditReader = { admin: true; tenantId: string | undefined } | { admin: false; tenantId: string };

export type AuditListQuery = Omit<AuditQuery, 'tenant_id' | 'after_seq' | 'limit'> & { cursor?: string; limit: number };

export type AuditPage = { items: AuditEntry[]; next_cursor: string | null } | { items: TenantAuditEntry[]; next_cursor: string | null };

/**
 * The audit ledger as readers see it: pages of entries (every field for the platform admin, the
 * tenant view for a tenant), a tenant's inclusion proof in the newest checkpoint or in one it
 * saved, and the checkpoint series itself, link by link, for tenants and witnesses to follow.
 */
export class AuditService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly latestCheckpoint?: LatestCheckpointSource,
    private readonly series?: CheckpointSeriesSource,
  ) {}

  async list(reader: AuditReader, query: AuditListQuery): Promise<AuditPage> {
    const { cursor, limit, ...filters } = query;
    const afterSeq = await this.resolveCursor(cursor, reader);
    const rows = await listAuditEvents(this.db, { ...filters, tenant_id: reader.tenantId, after_seq: afterSeq, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const last = rows.length > limit ? page[page.length - 1]! : null;
    if (reader.admin) return { items: page.map(toAuditEntry), next_cursor: last?.seq ?? null };
    return { items: page.map(toTenantAuditEntry), next_cursor: last?.event_id ?? null };
  }

  /** A page cursor as a seq: the admin's seq as is; an event id looked up (within a tenant's own entries). */
  private async resolveCursor(cursor: string | undefined, reader: AuditReader): Promise<string | undefined> {
    if (cursor === undefined) return undefined;
    const isSeq = /^\d+$/.test(cursor);
    if (isSeq && reader.admin) return cursor;
    const seq = isSeq ? undefined : await findAuditSeq(this.db, cursor, reader.admin ? undefined : reader.tenantId);
    if (seq === undefined) throw new InvalidInputError('cursor', 'is not a cursor from this listing');
    return seq;
  }

  /**
   * The inclusion proof of the tenant's chain head in a signed checkpoint: the newest one, or the
   * one with this id (a checkpoint the tenant saved), so that a tenant can check that a later
   * history still holds what an earlier checkpoint proved.
   */
  async proof(tenantId: string | null, checkpointId?: string): Promise<TenantProof> {
    const checkpoint = checkpointId === undefined ? await this.newest() : await this.checkpointWithId(checkpointId);
    const outcome = await buildTenantProof(this.db, tenantId, checkpoint);
    if ('notCovered' in outcome)
      throw new NotAnchoredYetError(
        checkpointId === undefined
          ? 'The latest signed checkpoint does not cover this tenant yet: the worker signs one within a signing period.'
          : "This checkpoint does not cover the tenant: it was signed before the tenant's first entry.",
      );
    if ('inconsistent' in outcome)
      throw new LedgerAnchorUnavailableError('The ledger does not match its signed checkpoint; the operator has been alerted by the signer.');
    return outcome.proof;
  }

  /** The links of the checkpoint series after `after` (from its genesis when null), oldest first; the cursor is the last link's id. */
  async checkpoints(after: string | null, limit: number): Promise<{ items: TenantLink[]; next_cursor: string | null }> {
    const series = this.requireSeries();
    const page = await series.after(after, limit).catch(anchorsUnreadable);
    if (page === null) throw new CheckpointNotFoundError(after!);
    return { items: page.links, next_cursor: page.more ? tenantLinkHash(page.links.at(-1)!) : null };
  }

  private async newest(): Promise<StoredCheckpoint> {
    // The checkpoint stream is a dependency like Postgres: NATS down is a 503, never a 500.
    const checkpoint = this.latestCheckpoint ? await this.latestCheckpoint().catch(anchorsUnreadable) : null;
    if (!checkpoint) throw new NotAnchoredYetError('No signed ledger checkpoint yet: the worker signs one within a signing period after entries are written.');
    return checkpoint;
  }

  private async checkpointWithId(checkpointId: string): Promise<StoredCheckpoint> {
    const checkpoint = await this.requireSeries().checkpoint(checkpointId).catch(anchorsUnreadable);
    if (!checkpoint) throw new CheckpointNotFoundError(checkpointId);
    return checkpoint;
  }

  private requireSeries(): CheckpointSeriesSource {
    if (!this.series) throw new LedgerAnchorUnavailableError('The ledger checkpoint stream is not configured on this API.');
    return this.series;
  }
}

function anchorsUnreadable(): never {
  throw new LedgerAnchorUnavailableError('The ledger checkpoint stream cannot be read right now.');
}
