/**
 * A tenant id is a DNS-label-like string: 3 to 63 characters of lowercase ASCII letters, digits and
 * hyphens, starting with a letter and not ending with a hyphen. It is safe in URLs, workflow ids,
 * search attributes and log lines without escaping.
 */
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9-]{1,61}[a-z0-9]$/;

export function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && TENANT_ID_PATTERN.test(value);
}

export function tenantWorkflowId(tenantId: string): string {
  return `tenant-${tenantId}`;
}
