import type { Scope } from '../shared/scopes';

/** The authenticated caller of a request. */
export interface Caller {
  token_id: string;
  tenant_id: string | null;
  scope: Scope;
  expires_at: Date | null;
}

export function isPlatformAdmin(caller: Caller): boolean {
  return caller.scope === 'service:admin';
}
