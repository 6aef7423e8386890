import type { Scope } from '../shared/scopes';

/** The authenticated caller of a request. */
export interface Caller {
  token_id: string;
  tenant_id: string | null;
  scope: Scope;
  expires_at: Date | null;
  /** The tenant's api_rate_limit_rpm, read with the token on every request; null for platform tokens. */
  rate_limit_rpm: number | null;
}

export function isPlatformAdmin(caller: Caller): boolean {
  return caller.scope === 'service:admin';
}
