/**
 * The authorization policy, written from the specification (README "API" and "Scopes", seed 003),
 * not from the routes: which scope may do which action, and what a caller learns when it may not.
 * authz-matrix.test.ts derives every expected status from this table; authz-matrix.json only says
 * which action each route is and what it targets. A route that behaves differently from the
 * policy fails the matrix, whichever of the two is wrong.
 */

export const ACTIONS = [
  'tenant.create',
  'tenant.list',
  'tenant.read',
  'tenant.update',
  'tenant.delete',
  'token.issue',
  'token.list',
  'token.revoke',
  'vm.spawn',
  'vm.list',
  'vm.read',
  'vm.destroy',
  'audit.read',
] as const;
export type Action = (typeof ACTIONS)[number];

export type PolicyScope = 'service:admin' | 'service:tenant-admin' | 'vm:write' | 'vm:read' | 'audit:read';

/** Scope -> the actions it allows. */
export const ALLOWED: Record<PolicyScope, readonly Action[]> = {
  // The platform operator manages tenants and their tokens and may read any tenant, but acts on
  // VMs only through a token of that tenant.
  'service:admin': [
    'tenant.create',
    'tenant.list',
    'tenant.read',
    'tenant.update',
    'tenant.delete',
    'token.issue',
    'token.list',
    'token.revoke',
    'vm.list',
    'vm.read',
    'audit.read',
  ],
  // A tenant's administrator: everything inside its own tenant, nothing about the tenant's existence or quota.
  'service:tenant-admin': ['tenant.read', 'token.issue', 'token.list', 'token.revoke', 'vm.spawn', 'vm.list', 'vm.read', 'vm.destroy', 'audit.read'],
  'vm:write': ['vm.spawn', 'vm.list', 'vm.read', 'vm.destroy'],
  'vm:read': ['vm.list', 'vm.read'],
  'audit:read': ['audit.read'],
};

/** Success status of each action. */
export const SUCCESS: Record<Action, number> = {
  'tenant.create': 201,
  'tenant.list': 200,
  'tenant.read': 200,
  'tenant.update': 200,
  'tenant.delete': 200,
  'token.issue': 201,
  'token.list': 200,
  'token.revoke': 200,
  'vm.spawn': 202,
  'vm.list': 200,
  'vm.read': 200,
  'vm.destroy': 202,
  'audit.read': 200,
};

/**
 * What a route's action is aimed at:
 * - `platform`: nothing of a tenant (register, list tenants);
 * - `named_tenant`: the tenant named in the request (path, or `?tenant_id=` where the route honours it);
 * - `own_tenant`: the caller's own tenant, whatever the request names (a platform admin names one in `?tenant_id=`);
 * - `tenant_object`: an object (VM) looked up within the caller's own tenant.
 */
export type Target = 'platform' | 'named_tenant' | 'own_tenant' | 'tenant_object';

export interface PolicyCaller {
  /** null: no usable credentials (missing, malformed, unknown, expired, revoked, tenant deleted). */
  scope: PolicyScope | null;
  /** The caller's tenant, null for the platform admin. */
  tenant: string | null;
}

/** Actions some tenant scope allows: any other action is the platform's alone. */
const TENANT_ACTIONS = new Set(
  (Object.entries(ALLOWED) as [PolicyScope, readonly Action[]][]).filter(([scope]) => scope !== 'service:admin').flatMap(([, actions]) => actions),
);

/**
 * The expected status for a caller doing `action` on `target`, where the request names or touches
 * tenant `targetTenant`. Disclosure rules, in order:
 * 1. no usable credentials: 401;
 * 2. an action no tenant scope allows, by a tenant token: 403 (nothing about the target is looked at);
 * 3. another tenant named in the request: 404, like a tenant that does not exist, before any scope
 *    check, so a token learns nothing about other tenants, not even whether its scope would do;
 * 4. a scope that does not allow the action: 403;
 * 5. another tenant's object: 404, like an object that does not exist.
 */
export function expectedStatus(caller: PolicyCaller, action: Action, target: Target, targetTenant: string): number {
  if (caller.scope === null) return 401;
  const allowed = ALLOWED[caller.scope].includes(action);
  if (caller.tenant === null) return allowed ? SUCCESS[action] : 403;
  if (!TENANT_ACTIONS.has(action)) return 403;
  if (target === 'named_tenant' && caller.tenant !== targetTenant) return 404;
  if (!allowed) return 403;
  if (target === 'tenant_object' && caller.tenant !== targetTenant) return 404;
  return SUCCESS[action];
}
