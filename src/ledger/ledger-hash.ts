import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

export const GENESIS_HASH = '0'.repeat(64);

/** The fields an entry's hash covers, in the form they are stored and read back. */
export interface HashedFields {
  seq: string;
  event_id: string;
  tenant_id: string | null;
  vm_id: string | null;
  event_type: string;
  occurred_at: Date;
  actor_token_id: string | null;
  actor_scope: string | null;
  source_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

/** SHA-256 over the previous hash and the RFC 8785 canonical JSON of the entry. */
export function entryHash(prevHash: string, fields: HashedFields): string {
  const canonical = canonicalize({ ...fields, occurred_at: fields.occurred_at.toISOString() });
  return createHash('sha256').update(prevHash).update('\n').update(canonical ?? '').digest('hex');
}
