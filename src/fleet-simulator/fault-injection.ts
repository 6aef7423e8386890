import { setTimeout as sleep } from 'node:timers/promises';
import type { RequestHandler } from 'express';
import { sendProblem } from './problem';
import type { SimControls } from './sim-controls';

/**
 * Latency and fault injection for the fleet API (/v1), driven by the run-time controls:
 * - `latency_ms` delays every call;
 * - `http_500` answers every call with a 500 problem;
 * - `timeout` never answers: the request is held until the client gives up, or until `shutdown`
 *   aborts, which destroys the held socket so the server can close.
 */
export function faultInjection(controls: SimControls, shutdown: AbortSignal): RequestHandler {
  return async (req, res, next) => {
    const { latency_ms: latencyMs, fault } = controls.get();
    if (latencyMs > 0) {
      // On shutdown, stop waiting and answer, so the server can drain.
      await sleep(latencyMs, undefined, { signal: shutdown }).catch(() => undefined);
    }
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
