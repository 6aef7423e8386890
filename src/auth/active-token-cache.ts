import type { ActiveToken } from './token.repository';

/**
 * Tokens that authenticated a moment ago, by hash, so a busy caller does not cost a Postgres round
 * trip on every request. Only successes are kept: a refused token always reaches the database. This
 * process's own revocations and deletions clear it at once (clear()).
 *
 * The promise it keeps: a revocation or a tenant deletion made through any other API process (or
 * straight in the database) is refused here within one second (docs/isolation-evidence.md, row 20).
 *
 * - Without a revocation watch, an entry lives `ttlMs` (default 500 ms) from the lookup that made it.
 * - With one (token-revocation-watch.ts: this process reads a counter every change that revokes moves on, and
 *   clears the cache when it moved), an entry lives up to `watchedTtlMs` (default 60 s), but past `ttlMs`
 *   it is served only while the watch has heard every revocation committed up to `ttlMs` ago. A
 *   watch that loses its session stops vouching within `ttlMs`, and the cache falls back to the
 *   short lifetime. So, either way, an entry made before a revocation is not served more than
 *   `ttlMs` after that revocation committed.
 * - A lookup that was under way when the cache was cleared may have read the token before the
 *   revocation: what it finds gets only the short lifetime (each miss notes the clear count it saw;
 *   a set that cannot show an unchanged count is short-lived).
 */
export interface ActiveTokenCache {
  /** The cached token, or undefined; a miss marks the lookup that follows (see set). */
  get(tokenHash: string, now: Date): ActiveToken | undefined;
  set(tokenHash: string, token: ActiveToken): void;
  /** Forgets every entry: after a revocation or a tenant deletion in this process, or one heard by the watch. */
  clear(): void;
}

/** What vouches for long-lived entries: every revocation committed before `heardUpTo()` (the cache's clock) has reached this process. */
export interface RevocationWatch {
  heardUpTo(): number;
}

export const DEFAULT_TOKEN_CACHE_TTL_MS = 500;
export const DEFAULT_WATCHED_TOKEN_CACHE_TTL_MS = 60_000;
const MAX_ENTRIES = 10_000;

export function createActiveTokenCache(
  ttlMs = DEFAULT_TOKEN_CACHE_TTL_MS,
  clock: () => number = () => performance.now(),
  watch?: RevocationWatch,
  watchedTtlMs = DEFAULT_WATCHED_TOKEN_CACHE_TTL_MS,
): ActiveTokenCache {
  const entries = new Map<string, { token: ActiveToken; at: number; until: number }>();
  /** How many times the cache was cleared: a lookup that spans a clear may hold a revoked token. */
  let clears = 0;
  /** Per token hash, the clear count at its oldest miss not yet followed by a set. */
  const misses = new Map<string, number>();
  return {
    get(tokenHash, now) {
      const entry = entries.get(tokenHash);
      const at = clock();
      if (entry) {
        const { token, until } = entry;
        const vouched = at - entry.at < ttlMs || (watch !== undefined && watch.heardUpTo() >= at - ttlMs);
        if (at < until && vouched && (token.expires_at === null || token.expires_at > now)) return token;
        entries.delete(tokenHash);
      }
      if (!misses.has(tokenHash)) {
        if (misses.size >= MAX_ENTRIES) misses.clear(); // a set without its miss is only short-lived
        misses.set(tokenHash, clears);
      }
      return undefined;
    },
    set(tokenHash, token) {
      if (ttlMs <= 0) return;
      const missedAt = misses.get(tokenHash);
      misses.delete(tokenHash);
      const long = watch !== undefined && missedAt === clears;
      // Oldest first: a Map iterates in insertion order.
      if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      entries.delete(tokenHash);
      const at = clock();
      entries.set(tokenHash, { token, at, until: at + (long ? Math.max(watchedTtlMs, ttlMs) : ttlMs) });
    },
    clear() {
      clears += 1;
      entries.clear();
    },
  };
}
