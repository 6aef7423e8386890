export const SCOPES = ['service:admin', 'service:tenant-admin', 'vm:write', 'vm:read', 'audit:read'] as const;
export type Scope = (typeof SCOPES)[number];

/** What each scope grants, itself included. A token may only issue tokens whose scope it covers. */
const GRANTS: Record<Scope, readonly Scope[]> = {
  'service:admin': SCOPES,
  'service:tenant-admin': ['service:tenant-admin', 'vm:write', 'vm:read', 'audit:read'],
  'vm:write': ['vm:write', 'vm:read'],
  'vm:read': ['vm:read'],
  'audit:read': ['audit:read'],
};

export function isScope(value: unknown): value is Scope {
  return typeof value === 'string' && (SCOPES as readonly string[]).includes(value);
}

export function scopeCovers(held: Scope, wanted: Scope): boolean {
  return GRANTS[held].includes(wanted);
}
