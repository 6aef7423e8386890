import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { withoutHead, type SignedCheckpoint, type StoredCheckpoint } from './checkpoint';
import { tenantHeadsAt } from './ledger-queries';
import { tenantLinkHash } from './tenant-link';
import { tenantTree } from './tenant-tree';

/**
 * What a tenant needs, besides its own entries and the public key, to prove them offline: a signed
 * checkpoint, the head of its chain that the checkpoint covers, and that head's inclusion path in
 * the checkpoint's tree. It names no other tenant and carries no global seq or hash: the
 * checkpoint has only a digest of the global head, and the path only sibling hashes.
 */
export interface TenantProof {
  checkpoint: SignedCheckpoint;
  /** The checkpoint's link hash: what GET /v1/audit/proof?checkpoint= and GET /v1/audit/checkpoints?cursor= take. */
  checkpoint_id: string;
  tenant_id: string | null;
  tenant_seq: string;
  tenant_hash: string;
  /** The event id of the tenant's head entry: where it sits now tells an insert from a rewrite. */
  event_id: string;
  leaf_index: number;
  tree_size: number;
  audit_path: string[];
}

export type TenantProofOutcome =
  | { proof: TenantProof }
  /** The tenant has no entry at or before the checkpoint's head yet. */
  | { notCovered: true }
  /** The stored tenant heads no longer give the signed root: the ledger changed since it was signed. */
  | { inconsistent: true };

export async function buildTenantProof(db: Kysely<Database>, tenantId: string | null, checkpoint: StoredCheckpoint): Promise<TenantProofOutcome> {
  const heads = await tenantHeadsAt(db, checkpoint.head.seq);
  const tree = tenantTree(heads);
  if (tree.root !== checkpoint.root || tree.size !== checkpoint.tree_size) return { inconsistent: true };
  const found = tree.proofFor(tenantId);
  if (!found) return { notCovered: true };
  const eventId = heads.find((head) => head.tenant_id === tenantId)!.event_id;
  const signed = withoutHead(checkpoint);
  return {
    proof: {
      checkpoint: signed,
      checkpoint_id: tenantLinkHash(signed),
      tenant_id: tenantId,
      tenant_seq: found.head.tenant_seq,
      tenant_hash: found.head.tenant_hash,
      event_id: eventId,
      leaf_index: found.leaf_index,
      tree_size: tree.size,
      audit_path: found.audit_path,
    },
  };
}
