import type { FleetClient } from '../fleet/fleet-client';
import type { WorkerMetrics } from './worker-metrics';
import { FleetRejectedError } from '../fleet/fleet-errors';

/** Times every fleet call and counts its failures, without changing what the call does. */
export function instrumentFleetClient(client: FleetClient, metrics: WorkerMetrics): FleetClient {
  const timed = <A extends unknown[], R>(operation: string, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const end = metrics.fleetCalls.startTimer({ operation });
      try {
        const result = await call(...args);
        end({ outcome: 'ok' });
        return result;
      } catch (error) {
        const kind = error instanceof FleetRejectedError ? 'rejected' : 'unavailable';
        end({ outcome: kind });
        metrics.fleetErrors.inc({ operation, kind });
        throw error;
      }
    };
  return { spawn: timed('spawn', client.spawn), get: timed('get', client.get), destroy: timed('destroy', client.destroy) };
}
