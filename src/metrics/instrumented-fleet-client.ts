import type { FleetClient } from '../fleet/fleet-client';
import type { WorkerMetrics } from './worker-metrics';
import { FleetCallAbortedError, FleetRejectedError } from '../fleet/fleet-errors';

/**
 * Times every fleet call and counts its failures, without changing what the call does (arguments,
 * an abort signal included, pass through as they are). A call the caller aborted is timed with
 * outcome 'aborted' and not counted as a fleet error: it says nothing about the fleet.
 */
export function instrumentFleetClient(client: FleetClient, metrics: WorkerMetrics): FleetClient {
  const timed =
    <A extends unknown[], R>(operation: string, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const end = metrics.fleetCalls.startTimer({ operation });
      try {
        const result = await call(...args);
        end({ outcome: 'ok' });
        return result;
      } catch (error) {
        if (error instanceof FleetCallAbortedError) {
          end({ outcome: 'aborted' });
          throw error;
        }
        const kind = error instanceof FleetRejectedError ? 'rejected' : 'unavailable';
        end({ outcome: kind });
        metrics.fleetErrors.inc({ operation, kind });
        throw error;
      }
    };
  return { spawn: timed('spawn', client.spawn), get: timed('get', client.get), destroy: timed('destroy', client.destroy) };
}
