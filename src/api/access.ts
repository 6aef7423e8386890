import type { Request } from 'express';
import type { Caller } from '../auth/caller';
import { scopeCovers, type Scope } from '../shared/scopes';
import { problems } from './problem';
import './request-types';
import { isPlatformAdmin } from '../auth/caller';

export function callerOf(req: Request): Caller {
  if (!req.caller) throw problems.unauthenticated();
  return req.caller;
}

export function requirePlatformAdmin(req: Request): Caller {
  const caller = callerOf(req);
  if (!isPlatformAdmin(caller)) throw problems.insufficientScope({ scope: 'service:admin' });
  return caller;
}

/**
 * Allows the platform admin, or a token of this very tenant whose scope covers `scope`. A token of
 * another tenant gets the same 404 as a tenant that does not exist, so tenant ids cannot be probed.
 */
export function requireTenantAccess(req: Request, tenantId: string, scope: Scope): Caller {
  const caller = callerOf(req);
  if (isPlatformAdmin(caller)) return caller;
  if (caller.tenant_id !== tenantId) throw problems.tenantNotFound();
  if (!scopeCovers(caller.scope, scope)) throw problems.insufficientScope({ scope });
  return caller;
}
