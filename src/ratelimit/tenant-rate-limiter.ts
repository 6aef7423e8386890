import type pg from 'pg';

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetSeconds: number;
}

export interface TenantRateLimiter {
  consume(tenantId: string, requestsPerMinute: number): Promise<RateDecision>;
  /** Stops the background work (prefetches, clean-up of old windows). */
  close?(): void;
}

const WINDOW_MS = 60_000;
/** Each grant is this share of the limit: the most one process can hold unused. */
const LEASE_SHARE = 0.01;
const CLEANUP_EVERY_MS = 60_000;

/** Points this process may spend in one tenant's current window without asking Postgres again. */
interface Allotment {
  readonly window: number;
  left: number;
  /** Points granted to all processes in this window, as of this process's last grant. */
  grantedEverywhere: number;
  /** The grant in flight; it resolves to the points it got (0: the window's budget is used up). */
  refilling?: Promise<number>;
}

export const leaseSize = (requestsPerMinute: number): number => Math.max(1, Math.ceil(requestsPerMinute * LEASE_SHARE));

/**
 * Per-tenant requests per fixed minute window, shared by every API process through one counter row
 * per tenant and window in Postgres, decided in memory. A process takes a lease of 1% of the limit
 * from the row (never past the limit) and spends it locally; when half of it is spent it asks for
 * the next one in the background, so a busy tenant's requests do not wait on Postgres. A tenant
 * with a limit under 200 per minute gets leases of one point, taken on the request (its rate is low).
 *
 * Tolerance: the processes together never admit more than the limit in a window (grants are
 * capped by the row); a process may refuse while others still hold unspent leases, so a tenant can
 * be refused up to (processes − 1) × lease requests early. A limit change applies to the next grant.
 */
export function createTenantRateLimiter(pool: pg.Pool, clock: () => number = Date.now): TenantRateLimiter {
  const allotments = new Map<string, Allotment>();

  /** Takes up to `points` of the window's budget from the row: what it got and the row's new total. */
  async function grant(tenantId: string, window: number, points: number, limit: number): Promise<{ granted: number; total: number }> {
    const key = `tenant-window:${tenantId}:${window}`;
    for (;;) {
      // FOR UPDATE re-reads the row after a concurrent grant commits, so the cap sees its points.
      const updated = await pool.query<{ granted: number; total: number }>(
        `update api_rate_limits r set points = r.points + g.granted
         from (select key, least($2::int, greatest(0, $3::int - points)) as granted from api_rate_limits where key = $1 for update) g
         where r.key = g.key returning g.granted, r.points as total`,
        [key, points, limit],
      );
      if (updated.rows[0]) return updated.rows[0];
      const inserted = await pool.query<{ total: number }>(
        'insert into api_rate_limits (key, points, expire) values ($1, least($2::int, $3::int), $4) on conflict (key) do nothing returning points as total',
        [key, points, limit, window + WINDOW_MS],
      );
      if (inserted.rows[0]) return { granted: inserted.rows[0].total, total: inserted.rows[0].total };
      // Another process created the row between the two statements: take the grant from it.
    }
  }

  function refill(tenantId: string, allotment: Allotment, limit: number): Promise<number> {
    allotment.refilling ??= grant(tenantId, allotment.window, leaseSize(limit), limit)
      .then(({ granted, total }) => {
        allotment.left += granted;
        allotment.grantedEverywhere = total;
        return granted;
      })
      .finally(() => (allotment.refilling = undefined));
    return allotment.refilling;
  }

  const cleanup = setInterval(() => {
    void pool.query('delete from api_rate_limits where expire < $1', [clock() - WINDOW_MS]).catch(() => undefined);
  }, CLEANUP_EVERY_MS);
  cleanup.unref();

  return {
    async consume(tenantId, limit) {
      const now = clock();
      const window = Math.floor(now / WINDOW_MS) * WINDOW_MS;
      let allotment = allotments.get(tenantId);
      if (allotment?.window !== window) {
        allotment = { window, left: 0, grantedEverywhere: 0 };
        allotments.set(tenantId, allotment);
      }
      const resetSeconds = Math.max(1, Math.ceil((window + WINDOW_MS - now) / 1000));
      // Requests waiting together share each grant; whoever finds it spent asks again, until a grant comes back empty.
      while (allotment.left <= 0) {
        if ((await refill(tenantId, allotment, limit)) === 0 && allotment.left <= 0) return { allowed: false, limit, remaining: 0, resetSeconds };
      }
      allotment.left -= 1;
      const lease = leaseSize(limit);
      if (lease > 1 && allotment.left <= lease / 2) void refill(tenantId, allotment, limit).catch(() => undefined);
      return { allowed: true, limit, remaining: Math.max(0, limit - allotment.grantedEverywhere + allotment.left), resetSeconds };
    },
    close() {
      clearInterval(cleanup);
    },
  };
}
