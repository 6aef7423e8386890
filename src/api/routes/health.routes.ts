import { Router } from 'express';

/** Resolves when the dependency answers; `deadline` (ms since the epoch) is when /readyz stops waiting. */
export type DependencyCheck = (deadline: number) => Promise<void>;

/** What /readyz says of the ledger's anchoring: informative, never a reason to be unready. */
export interface LedgerCheckpointReport {
  /** When the newest signed checkpoint was signed; null before the first. */
  signed_at: string | null;
  /** Seconds since then (before the first: since this API started). */
  age_seconds: number;
  /** Older than three signing periods while entries wait for a checkpoint (the alert's condition). */
  stale: boolean;
}

/** /readyz answers within this, naming every dependency that is down or did not answer (hung). */
export const READINESS_TIMEOUT_MS = 2_000;

/**
 * The dependencies every request needs: Postgres (tokens, rate limits, every record). Down, the
 * API is unready (503) and the load balancer sends its traffic to another replica. Temporal (VM
 * and quota writes) and NATS (checkpoints, proofs) are reported, never a reason to be unready: when
 * one blinks, every replica sees it at once, and taking them all out of service would refuse the
 * reads, token and tenant routes that need neither; the routes that do answer 503 naming it.
 */
export const READINESS_REQUIRES: readonly string[] = ['postgres'];

function withinTimeout<T>(work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * `/healthz`: the process is alive (the API listens once Postgres and Temporal answered at start).
 * `/readyz`: 200 while the dependencies of READINESS_REQUIRES answer, 503 otherwise; every
 * dependency is reported, naming any that is down or hung; with `ledgerCheckpoint`, also the age
 * of the newest signed checkpoint. A stale checkpoint does not make the API unready (it serves
 * everything but fresh proofs); the worker's metric alerts on it.
 */
export function healthRoutes(checks: Record<string, DependencyCheck>, ledgerCheckpoint?: () => Promise<LedgerCheckpointReport>): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const deadline = Date.now() + READINESS_TIMEOUT_MS;
    const [results, checkpoint] = await Promise.all([
      Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          try {
            await withinTimeout(check(deadline));
            return [name, { ok: true }] as const;
          } catch (error) {
            return [name, { ok: false, error: messageOf(error) }] as const;
          }
        }),
      ),
      ledgerCheckpoint ? withinTimeout(ledgerCheckpoint()).catch((error: unknown) => ({ error: messageOf(error) })) : undefined,
    ]);
    const dependencies = Object.fromEntries(results);
    const ready = results.every(([name, result]) => result.ok || !READINESS_REQUIRES.includes(name));
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', dependencies, ...(checkpoint ? { ledger_checkpoint: checkpoint } : {}) });
  });
  return router;
}
