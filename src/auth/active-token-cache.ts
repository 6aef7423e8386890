import type { ActiveToken } from './token.repository';

/**
 * Tokens that authenticated a moment ago, by hash, so a busy caller does not cost a Postgres round
 * trip on every request. An entry lives `ttlMs` (default 500 ms): a revocation or a tenant deletion
 * made through any other API process takes effect here within that time, well inside the one second
 * the revocation guarantee allows (docs/isolation-evidence.md, row 20). This process's own revocations and deletions
 * clear it at once. Only successes are kept: a refused token always reaches the database.
 */
export interface ActiveTokenCache {
  get(tokenHash: string, now: Date): ActiveToken | undefined;
  set(tokenHash: string, token: ActiveToken): void;
  /** Forgets every entry: after a revocation or a tenant deletion in this process. */
  clear(): void;
}

export const DEFAULT_TOKEN_CACHE_TTL_MS = 500;
const MAX_ENTRIES = 10_000;

export function createActiveTokenCache(ttlMs = DEFAULT_TOKEN_CACHE_TTL_MS, clock: () => number = () => performance.now()): ActiveTokenCache {
  const entries = new Map<string, { token: ActiveToken; until: number }>();
  return {
    get(tokenHash, now) {
      const entry = entries.get(tokenHash);
      if (!entry) return undefined;
      const { token, until } = entry;
      if (clock() >= until || (token.expires_at !== null && token.expires_at <= now)) {
        entries.delete(tokenHash);
        return undefined;
      }
      return token;
    },
    set(tokenHash, token) {
      if (ttlMs <= 0) return;
      // Oldest first: a Map iterates in insertion order.
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      entries.delete(tokenHash);
      entries.set(tokenHash, { token, until: clock() + ttlMs });
    },
    clear() {
      entries.clear();
    },
  };
}
