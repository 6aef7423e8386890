import { createHash } from 'node:crypto';
import { canonicalJson, type HashedFields } from './ledger-hash';
import { leafHash, MerkleFrontier } from './merkle';

/**
 * The entry tree: an RFC 9162 Merkle tree with one leaf per stored ledger entry, every column of
 * it, in seq order. A checkpoint signs its size and root (through `entries_digest`), so no field of
 * any entry up to the signed head can change unnoticed: not `seq`, and not the `source_ip` and
 * `user_agent` of the platform operator's actions, which the tenant hashes leave out.
 *
 *   leaf = SHA-256(0x00 || "vm-tenant ledger entry v2\n" || JCS(entry))
 *
 * `entry` holds every column of `audit_events`: seq and tenant_seq as decimal strings,
 * occurred_at as ISO 8601 UTC with milliseconds, details as stored (JCS makes its rendering
 * canonical), the links and hashes as the hex the database holds. Leaves are appended in seq
 * order and the signer signs only below the commit horizon, so the tree only ever grows at its
 * right edge: the tree of a later checkpoint extends that of an earlier one (RFC 9162 section 2.1.4
 * consistency).
 */
export const ENTRY_LEAF_DOMAIN = 'vm-tenant ledger entry v2';
const ENTRIES_DOMAIN = 'vm-tenant ledger entries v2';

/** Every stored column of an entry, as read from the table: the hashed fields and the chain columns. */
export interface StoredEntry extends HashedFields {
  prev_hash: string;
  hash: string;
  tenant_seq: string;
  tenant_prev_hash: string;
  tenant_hash: string;
}

/** The canonical JSON a leaf hashes: every column, picked by name (a row may carry more). */
export function entryLeafJson(entry: StoredEntry): string {
  return canonicalJson({
    seq: entry.seq,
    event_id: entry.event_id,
    tenant_id: entry.tenant_id,
    vm_id: entry.vm_id,
    event_type: entry.event_type,
    occurred_at: entry.occurred_at.toISOString(),
    actor_token_id: entry.actor_token_id,
    actor_scope: entry.actor_scope,
    source_ip: entry.source_ip,
    user_agent: entry.user_agent,
    request_id: entry.request_id,
    details: entry.details,
    prev_hash: entry.prev_hash,
    hash: entry.hash,
    tenant_seq: entry.tenant_seq,
    tenant_prev_hash: entry.tenant_prev_hash,
    tenant_hash: entry.tenant_hash,
  });
}

export function entryLeafHash(entry: StoredEntry): string {
  return leafHash(Buffer.from(`${ENTRY_LEAF_DOMAIN}\n${entryLeafJson(entry)}`, 'utf8'));
}

/** The entry tree as a checkpoint records it: its size (a decimal string: a count of entries) and root. */
export interface EntryTreeHead {
  size: string;
  root: string;
}

/** What the signed statement carries instead of the size and root: tenants see neither (the size is the ledger's volume). */
export function entriesDigest(entries: EntryTreeHead): string {
  return createHash('sha256')
    .update(`${ENTRIES_DOMAIN}\n${canonicalJson({ size: entries.size, root: entries.root })}`)
    .digest('hex');
}

export function entryTreeHead(frontier: MerkleFrontier): EntryTreeHead {
  return { size: frontier.size.toString(), root: frontier.root() };
}

/** The entry tree of these entries, in the order given (seq order). */
export function entryTreeOf(entries: readonly StoredEntry[]): EntryTreeHead {
  const frontier = MerkleFrontier.empty();
  for (const entry of entries) frontier.append(entryLeafHash(entry));
  return entryTreeHead(frontier);
}
