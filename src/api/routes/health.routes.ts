import { Router } from 'express';

export type DependencyCheck = () => Promise<void>;

/** `/healthz`: the process is alive. `/readyz`: every dependency answers, naming any that does not. */
export function healthRoutes(checks: Record<string, DependencyCheck>): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const results = await Promise.all(
      Object.entries(checks).map(async ([name, check]) => {
        const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out after 2s')), 2_000).unref());
        try {
          await Promise.race([check(), timeout]);
          return [name, { ok: true }] as const;
        } catch (error) {
          return [name, { ok: false, error: error instanceof Error ? error.message : String(error) }] as const;
        }
      }),
    );
    const dependencies = Object.fromEntries(results);
    const ready = results.every(([, result]) => result.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'unavailable', dependencies });
  });
  return router;
}
