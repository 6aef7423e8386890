import { Router } from 'express';

/** Resolves when the dependency answers; `deadline` (ms since the epoch) is when /readyz stops waiting. */
export type DependencyCheck = (deadline: number) => Promise<void>;

/** /readyz answers within this, naming every dependency that is down or did not answer (hung). */
export const READINESS_TIMEOUT_MS = 2_000;

/** `/healthz`: the process is alive. `/readyz`: every dependency answers, naming any that does not. */
export function healthRoutes(checks: Record<string, DependencyCheck>): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const deadline = Date.now() + READINESS_TIMEOUT_MS;
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`did not answer within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
        });
        try {
          await Promise.race([check(deadline), timeout]);
          return [name, { ok: true }] as const;
        } catch (error) {
          return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }] as const;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const dependencies = Object.fromEntries(results);
    const ready = results.every(([, result]) => result.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', dependencies });
  });
  return router;
}
