import { createHash } from 'node:crypto';
import { checkpointSignedBytes, withoutHead, type SignedCheckpoint } from './checkpoint';
import { rotationLinkHash, type Link } from './checkpoint-link';
import type { StoredKeyRotation } from './checkpoint-rotation';

/**
 * A link of the checkpoint series as tenants and witnesses get it (GET /v1/audit/checkpoints): a
 * signed checkpoint statement without the operator's head and entry tree, or a key rotation with
 * both public keys. Its link hash is the same as the stored link's, since both hash the signed
 * bytes: what the next link names as `previous`.
 */
export type TenantLink = SignedCheckpoint | StoredKeyRotation;

export function tenantLinkOf(link: Link): TenantLink {
  return link.kind === 'rotation' ? link.rotation : withoutHead(link.checkpoint);
}

export const isRotation = (link: TenantLink): link is StoredKeyRotation => (link as { type?: unknown }).type === 'key_rotation';

export function tenantLinkHash(link: TenantLink): string {
  return isRotation(link) ? rotationLinkHash(link) : createHash('sha256').update(checkpointSignedBytes(link)).digest('hex');
}
