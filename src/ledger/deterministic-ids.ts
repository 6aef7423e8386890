import { createHash } from 'node:crypto';

// A fixed namespace for vm-tenant's name-based UUIDs (RFC 9562 version 5).
const NAMESPACE = Buffer.from('6f1c2a9e4b7d4c0e9a3b5d8e7f6a1b2c', 'hex');

export function uuidV5(name: string): string {
  const hash = createHash('sha1').update(NAMESPACE).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The ledger event id of one lifecycle step of one VM. Whoever records the step first (the API or
 * a retried activity) writes it; everyone after finds it stored, and NATS dedupes it by this id.
 */
export function vmLifecycleEventId(vmId: string, eventType: string): string {
  return uuidV5(`vm:${vmId}:${eventType}`);
}

/**
 * The ledger event id of an admission step (VM_SPAWN_REQUESTED, VM_SPAWN_REJECTED) of one request for
 * a VM: attempt 1 keeps the id of vmLifecycleEventId; a refused request asked again is the next attempt.
 */
export function admissionEventId(vmId: string, eventType: string, attempt: number): string {
  return vmLifecycleEventId(attempt > 1 ? `${vmId}#${attempt}` : vmId, eventType);
}

/** The VM id for a spawn under an Idempotency-Key: a retried request names the same VM. */
export function vmIdForIdempotencyKey(tenantId: string, key: string): string {
  return uuidV5(`spawn:${tenantId}:${key}`);
}

/** The ledger event id of a once-only step of a tenant's life (its deletion). */
export function tenantLifecycleEventId(tenantId: string, eventType: string): string {
  return uuidV5(`tenant:${tenantId}:${eventType}`);
}
