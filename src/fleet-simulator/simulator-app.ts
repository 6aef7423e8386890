import express, { type ErrorRequestHandler } from 'express';
import { faultInjection, latencyInjection } from './fault-injection';
import type { FleetState } from './fleet-state';
import { sendProblem } from './problem';
import type { SimControls } from './sim-controls';
import { simRoutes } from './sim.routes';
import { vmsRoutes } from './vms.routes';

export interface SimulatorAppDeps {
  state: FleetState;
  controls: SimControls;
  /** Aborted when the server shuts down: releases requests held by the `timeout` fault. */
  shutdown: AbortSignal;
}

/** The fleet simulator's HTTP app, without listen (see start-simulator.ts). */
export function createSimulatorApp(deps: SimulatorAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  // Faults come before body parsing: an injected fault answers whatever the body is.
  app.use('/v1', faultInjection(deps.controls, deps.shutdown));
  app.use(express.json({ limit: '64kb' }));
  app.use('/v1', latencyInjection(deps.controls, deps.shutdown));
  app.use('/v1/vms', vmsRoutes(deps.state));
  app.use('/_sim', simRoutes(deps.state, deps.controls));

  app.use((req, res) => {
    sendProblem(res, 404, 'not_found', `no route ${req.method} ${req.path}`);
  });
  app.use(errorHandler);
  return app;
}

const errorHandler: ErrorRequestHandler = (err: unknown, _req, res, next) => {
  if (res.headersSent) return next(err);
  const status = (err as { status?: unknown }).status;
  // body-parser errors (malformed JSON, too large) carry a 4xx status and a message safe to show.
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return sendProblem(res, status, 'invalid_request', (err as Error).message);
  }
  sendProblem(res, 500, 'internal', 'the simulator failed; see its log');
};
