import type { AuditEventType } from './audit-event-types';

/**
 * NATS subjects are domain-scoped (seed 004): the tenant is a payload owner field, not part of the
 * subject, so subjects never carry caller-chosen text. One stream, VM_TENANT, holds them all.
 */
export const DEFAULT_EVENT_SUBJECT_PREFIX = 'vmtenant';

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

export function subjectFor(prefix: string, eventType: AuditEventType): string {
  return `${prefix}.${SUBJECTS[eventType]}`;
}
