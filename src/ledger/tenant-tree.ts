import { canonicalJson } from './ledger-hash';
import { inclusionPath, leafHash, merkleRoot } from './merkle';

/**
 * The Merkle tree of tenant chain heads that a checkpoint signs. One leaf per chain (each tenant,
 * and the platform chain with tenant_id null):
 *
 *   leaf = SHA-256(0x00 || "vm-tenant tenant head v1\n" || JCS({tenant_id, tenant_seq, tenant_hash}))
 *
 * Leaves are ordered by their own hash, so a leaf's position says nothing about its tenant id, and
 * a proof hands a tenant only sibling hashes: no other tenant's id, count or chain hash.
 */
export interface TenantHead {
  tenant_id: string | null;
  tenant_seq: string;
  tenant_hash: string;
}

export function tenantLeafHash(head: TenantHead): string {
  return leafHash(
    Buffer.from(
      `vm-tenant tenant head v1\n${canonicalJson({ tenant_id: head.tenant_id, tenant_seq: head.tenant_seq, tenant_hash: head.tenant_hash })}`,
      'utf8',
    ),
  );
}

export interface TenantTree {
  size: number;
  root: string;
  /** The leaf index and inclusion path of one tenant's head, or null if it has no chain. */
  proofFor(tenantId: string | null): { head: TenantHead; leaf_index: number; audit_path: string[] } | null;
}

export function tenantTree(heads: readonly TenantHead[]): TenantTree {
  const leaves = heads.map((head) => ({ head, leaf: tenantLeafHash(head) })).sort((a, b) => (a.leaf < b.leaf ? -1 : a.leaf > b.leaf ? 1 : 0));
  const hashes = leaves.map((l) => l.leaf);
  return {
    size: leaves.length,
    root: merkleRoot(hashes),
    proofFor(tenantId) {
      const index = leaves.findIndex((l) => l.head.tenant_id === tenantId);
      if (index < 0) return null;
      return { head: leaves[index]!.head, leaf_index: index, audit_path: inclusionPath(index, hashes) };
    },
  };
}
