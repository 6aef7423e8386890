import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import { sendProblem } from './problem';
import type { SimControls } from './sim-controls';

/**
 * Fault injection for the fleet API (/v1), driven by the run-time controls:
 * - `http_500` answers every call with a 500 problem;
 * - `timeout` never answers: the request is held until the client gives up, or until `shutdown`
 *   aborts, which destroys the held socket so the server can close.
 */
export function faultInjection(controls: SimControls, shutdown: AbortSignal): RequestHandler {
  return (_req, res, next) => {
    const { fault } = controls.get();
    if (fault === 'http_500') {
      sendProblem(res, 500, 'fault_injected', 'fault http_500 is injected');
      return;
    }
    if (fault === 'timeout') {
      hold(res, shutdown);
      return;
    }
    next();
  };
}

/**
 * `latency_ms` delays every call once its body is read: the call then takes effect whether or not
 * its client is still waiting, as a real controller's would (a create that lands after its client
 * gave up, or after a destroy of the same id overtook it).
 */
export function latencyInjection(controls: SimControls, shutdown: AbortSignal): RequestHandler {
  return async (_req, _res, next) => {
    const { latency_ms: latencyMs } = controls.get();
    // On shutdown, stop waiting and answer, so the server can drain.
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: shutdown }).catch(() => undefined);
    next();
  };
}

function hold(res: Parameters<RequestHandler>[1], shutdown: AbortSignal): void {
  const release = (): void => {
    res.socket?.destroy();
  };
  if (shutdown.aborted) {
    release();
    return;
  }
  shutdown.addEventListener('abort', release, { once: true });
  res.on('close', () => shutdown.removeEventListener('abort', release));
}
