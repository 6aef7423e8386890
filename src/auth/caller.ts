import type { KeyBinding } from '../db/tables';
import type { Scope } from '../shared/scopes';

/** The authenticated caller of a request. */
export interface Caller {
  token_id: string;
  tenant_id: string | null;
  scope: Scope;
  expires_at: Date | null;
  /** The tenant's api_rate_limit_rpm, read with the token on every request; null for platform tokens. */
  rate_limit_rpm: number | null;
  /** 'required': this token's requests are signed with its key, and the tokens it issues are bound too. */
  key_binding: KeyBinding;
}

export function isPlatformAdmin(caller: Caller): boolean {
  return caller.scope === 'service:admin';
}
