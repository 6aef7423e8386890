import { Router } from 'express';
import { z } from 'zod';
import type { FleetState } from './fleet-state';
import { sendProblem } from './problem';
import { SimControlsPatchSchema, type SimControls } from './sim-controls';

/** Simulator-only controls: /_sim. Not part of the fleet controller's contract. */
export function simRoutes(state: FleetState, controls: SimControls): Router {
  const router = Router();

  router.get('/config', (_req, res) => {
    res.json(controls.get());
  });

  router.put('/config', (req, res) => {
    const parsed = SimControlsPatchSchema.safeParse(req.body);
    if (!parsed.success) return sendProblem(res, 400, 'invalid_request', z.prettifyError(parsed.error));
    res.json(controls.update(parsed.data));
  });

  router.get('/stats', (_req, res) => {
    res.json(state.stats());
  });

  return router;
}
