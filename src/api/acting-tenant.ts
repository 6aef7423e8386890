import type { Request } from 'express';
import { isPlatformAdmin } from '../auth/caller';
import type { Scope } from '../shared/scopes';
import { isTenantId } from '../shared/tenant-id';
import { callerOf, requireTenantAccess } from './access';
import { problems } from './problem';

/** Where a route lets the platform admin, which has no tenant of its own, act. */
export type AdminReach =
  /** VM reads of the tenant it names in `?tenant_id=`; VM writes need a token of that tenant. */
  | 'reads-of-named'
  /** The tenant it names, which it must name (the audit proof). */
  | 'named'
  /** The tenant it names, or every tenant when it names none (the audit listing: undefined). */
  | 'named-or-all';

export interface ActingTenantRule {
  /** The scope the request needs within the tenant. */
  scope: Scope;
  admin: AdminReach;
  /** The tenant the request names in `?tenant_id=`, if the route reads one. */
  named?: unknown;
  /**
   * What a tenant token naming another tenant gets: 'not-found' the same 404 as a tenant that does
   * not exist; 'ignored' its own tenant (VM routes, where an object is then looked up in it).
   */
  otherTenantNamed: 'not-found' | 'ignored';
}

/**
 * The tenant a request acts in, decided in this one place: a tenant token acts in its own tenant
 * (its scope must cover the rule's); the platform admin acts where the rule lets it.
 */
export function actingTenant(req: Request, rule: ActingTenantRule & { admin: 'reads-of-named' | 'named' }): string;
export function actingTenant(req: Request, rule: ActingTenantRule): string | undefined;
export function actingTenant(req: Request, rule: ActingTenantRule): string | undefined {
  const caller = callerOf(req);
  const named = rule.named;
  if (isPlatformAdmin(caller)) return adminTenant(rule, named);
  const own = caller.tenant_id ?? '';
  if (rule.otherTenantNamed === 'not-found' && named !== undefined && named !== own) throw problems.tenantNotFound();
  requireTenantAccess(req, own, rule.scope);
  return own;
}

function adminTenant({ admin, scope }: ActingTenantRule, named: unknown): string | undefined {
  switch (admin) {
    case 'reads-of-named':
      if (scope !== 'vm:read' || !isTenantId(named)) {
        throw problems.insufficientScope({ detail: 'VM writes act within a tenant: use a token issued to that tenant.' });
      }
      return named;
    case 'named':
      if (!isTenantId(named)) throw problems.invalid('Invalid query', [{ field: 'tenant_id', message: 'is required for the platform admin' }]);
      return named;
    case 'named-or-all':
      return isTenantId(named) ? named : undefined;
  }
}
