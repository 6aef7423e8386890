import type { AuditEventType } from './audit-event-types';
import { isTenantId } from './tenant-id';

/**
 * Subject grammar: `<prefix>.<family>.<event>.<owner>`, e.g. `vmtenant.vm.running.acme-corp`.
 * The owner token is the tenant id, or `_platform` for an event no tenant owns, so a consumer can be
 * confined to one tenant by subject (NATS permissions, a consumer's filter_subject) instead of by
 * payload. Tenant ids are `[a-z0-9-]` starting with a letter: never `.`, `*`, `>` or whitespace, and
 * never `_platform`. One stream, VM_TENANT, holds every subject (`<prefix>.>`).
 */
export const DEFAULT_EVENT_SUBJECT_PREFIX = 'vmtenant';
export const PLATFORM_SUBJECT_TOKEN = '_platform';

export function streamSubjects(prefix: string): string[] {
  return [`${prefix}.>`];
}

const SUBJECTS: Record<AuditEventType, string> = {
  TENANT_CREATED: 'tenant.created',
  QUOTA_CHANGED: 'tenant.quota_changed',
  TENANT_DELETED: 'tenant.deleted',
  TOKEN_ISSUED: 'token.issued',
  TOKEN_REVOKED: 'token.revoked',
  VM_SPAWN_REQUESTED: 'vm.spawn_requested',
  VM_SPAWN_REJECTED: 'vm.spawn_rejected',
  VM_RUNNING: 'vm.running',
  VM_DESTROY_REQUESTED: 'vm.destroy_requested',
  VM_DESTROYED: 'vm.destroyed',
  VM_FAILED: 'vm.failed',
};

export class InvalidSubjectOwnerError extends Error {
  override readonly name = 'InvalidSubjectOwnerError';
}

function ownerToken(tenantId: string | null): string {
  if (tenantId === null) return PLATFORM_SUBJECT_TOKEN;
  // A subject token must not let an owner widen or split the subject; stored ids always pass.
  if (!isTenantId(tenantId)) throw new InvalidSubjectOwnerError(`not a tenant id, cannot be a subject token: ${JSON.stringify(tenantId)}`);
  return tenantId;
}

export function subjectFor(prefix: string, eventType: AuditEventType, tenantId: string | null): string {
  return `${prefix}.${SUBJECTS[eventType]}.${ownerToken(tenantId)}`;
}

/** Every subject of one tenant's events (null: platform events): a filter_subject or a permission. */
export function ownerSubjectFilter(prefix: string, tenantId: string | null): string {
  return `${prefix}.*.*.${ownerToken(tenantId)}`;
}
