import { setTimeout as sleep } from 'node:timers/promises';
import { errorCauses } from '../shared/error-causes';
import { certificateVerifyFailure, describeConnectionFailure } from './connection-failure';

/**
 * Codes of a server that is not there yet (refused, unroutable, unresolved, timed out) or not
 * accepting yet (Postgres starting up, 57P03; out of connection slots, 53300). A wrong certificate,
 * password or database name fails the same way every time: those stop the start at once.
 */
const NOT_YET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', '57P03', '53300']);

/** What the clients say instead of a code: pg's connect timeout and closed socket, gRPC's connect deadline. */
const NOT_YET_MESSAGES =
  /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|timeout expired|Connection terminated unexpectedly|Failed to connect before the deadline|the database system is (starting up|shutting down|in recovery mode)/i;

/** Whether a failed first connection may succeed later, without anyone changing a setting. */
export function isNotReachableYet(error: unknown): boolean {
  if (certificateVerifyFailure(error)) return false;
  // temporal-connect's own handshake named a TLS problem; the gRPC error it wraps says only
  // "Failed to connect before the deadline". A handshake that could not even connect is not one.
  const links = [...errorCauses(error)];
  if (
    links.some(
      (link) =>
        link instanceof Error &&
        /TLS handshake failed/.test(link.message) &&
        !/ECONN|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test(link.message),
    )
  )
    return false;
  for (const link of links) {
    const code = (link as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_YET_CODES.has(code)) return true;
    if (link instanceof Error && NOT_YET_MESSAGES.test(link.message)) return true;
  }
  return false;
}

export interface WaitOptions {
  /** Between attempts (default 1 s, doubling up to 5 s). */
  retryEveryMs?: number;
  /** At most one report this often (default 30 s); the first failure is reported at once. */
  reportEveryMs?: number;
  /** Told of the waiting; by default a JSON warning line on stderr, as the start's other lines. */
  report?: (what: string, cause: string, waitedMs: number) => void;
}

function reportOnStderr(what: string, cause: string, waitedMs: number): void {
  console.error(
    JSON.stringify({ level: 'warn', time: Date.now(), msg: `waiting for ${what}: not reachable yet`, cause, waited_s: Math.round(waitedMs / 1000) }),
  );
}

/**
 * Runs `attempt` until it succeeds, for as long as its failure is one of a server that is not up
 * (yet): the API and the worker wait unready at start instead of exiting, so a pod started before
 * Postgres or Temporal answers waits (its startup probe bounds the wait) rather than crash-looping.
 * Any other failure (TLS, credentials, a missing database) is thrown at once.
 */
export async function waitUntilReachable<T>(what: string, attempt: () => Promise<T>, options: WaitOptions = {}): Promise<T> {
  const { retryEveryMs = 1_000, reportEveryMs = 30_000, report = reportOnStderr } = options;
  const started = Date.now();
  let reportedAt = -Infinity;
  let delay = retryEveryMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (!isNotReachableYet(error)) throw error;
      if (Date.now() - reportedAt >= reportEveryMs) {
        reportedAt = Date.now();
        report(what, describeConnectionFailure(error), reportedAt - started);
      }
    }
    await sleep(delay);
    delay = Math.min(delay * 2, Math.max(retryEveryMs, 5_000));
  }
}
