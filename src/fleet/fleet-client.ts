import { httpClientSpan } from '../telemetry/spans';
import { FleetCallAbortedError, FleetRejectedError, FleetUnavailableError } from './fleet-errors';
import { FleetVmSchema, type FleetRejectionCode, type FleetSpawnRequest, type FleetVm } from './fleet-types';

export interface FleetClientOptions {
  /** e.g. http://127.0.0.1:9231 */
  baseUrl: string;
  /** Per call, covering connect, response headers and body. */
  timeoutMs: number;
}

/**
 * Every call throws FleetRejectedError (do not retry) or FleetUnavailableError (may retry); see
 * docs/fleet-api.md for the mapping.
 *
 * `signal`: the caller's way to give up on a call early; the per-call timeout (`timeoutMs`) still
 * applies. Once it aborts, the call rejects promptly with FleetCallAbortedError (name 'AbortError',
 * `cause` the signal's reason), whatever the fleet was doing, and with no Fleet*Error: the abort
 * says nothing about the fleet. Whether an aborted spawn reached the fleet is unknown; a repeat with
 * the same request_id tells.
 */
export interface FleetClient {
  /**
   * Idempotent by `request_id`: a retry answers the VM created by the first call. An id the fleet
   * has destroyed, or was told to destroy before this create, is refused for good:
   * FleetRejectedError with code 'vm_tombstoned'.
   */
  spawn(req: FleetSpawnRequest, signal?: AbortSignal): Promise<FleetVm>;
  /** null when the fleet has never seen the VM. */
  get(vmId: string, signal?: AbortSignal): Promise<FleetVm | null>;
  /**
   * Idempotent; null when the fleet has never seen the VM (it then tombstones the id, so a create
   * arriving later is refused).
   */
  destroy(vmId: string): Promise<FleetVm | null>;
}

const REJECTION_CODES_BY_BODY: Readonly<Record<string, FleetRejectionCode>> = {
  no_capacity: 'no_capacity',
  image_refused: 'image_refused',
  vm_tombstoned: 'vm_tombstoned',
};

/** HTTP client of the fleet controller (docs/fleet-api.md). */
export function createFleetClient(options: FleetClientOptions): FleetClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');

  async function call(method: string, path: string, body: unknown, callerSignal: AbortSignal | undefined): Promise<Response> {
    const what = `${method} ${path}`;
    const timeout = AbortSignal.timeout(options.timeoutMs);
    // A client span, its trace context in the request's headers (docs/tracing.md); the deadline is the call's.
    const route = path.startsWith('/v1/vms/') ? '/v1/vms/{vm_id}' : path;
    try {
      return await httpClientSpan(method, route, `${baseUrl}${path}`, (traceHeaders) =>
        fetch(`${baseUrl}${path}`, {
          method,
          headers: {
            ...traceHeaders,
            ...(body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: callerSignal ? AbortSignal.any([timeout, callerSignal]) : timeout,
        }),
      );
    } catch (cause) {
      throw new FleetUnavailableError(`fleet ${what} failed: ${describeFetchFailure(cause, options.timeoutMs)}`, { cause });
    }
  }

  /** Reads a 2xx body as a VM record; a body the contract does not allow means the fleet is broken. */
  async function readVm(res: Response, what: string): Promise<FleetVm> {
    let json: unknown;
    try {
      json = await res.json();
    } catch (cause) {
      throw new FleetUnavailableError(`fleet ${what} answered ${res.status} with a body that is not JSON`, { cause });
    }
    const parsed = FleetVmSchema.safeParse(json);
    if (!parsed.success) {
      throw new FleetUnavailableError(`fleet ${what} answered ${res.status} with a body that is not a VM record`, { cause: parsed.error });
    }
    return parsed.data;
  }

  async function failure(res: Response, what: string): Promise<Error> {
    const problem = await readProblem(res);
    const summary = `fleet ${what} answered ${res.status}${problem.code ? ` ${problem.code}` : ''}${problem.detail ? `: ${problem.detail}` : ''}`;
    // 408 and 429 are the 4xx answers that say "not now" rather than "never".
    if (res.status >= 500 || res.status === 408 || res.status === 429) return new FleetUnavailableError(summary, { cause: problem });
    return new FleetRejectedError(REJECTION_CODES_BY_BODY[problem.code ?? ''] ?? 'invalid_request', summary, { cause: problem });
  }

  return {
    spawn(req, signal) {
      const what = `POST /v1/vms (${req.request_id})`;
      return abortable(what, signal, async () => {
        const res = await call('POST', '/v1/vms', req, signal);
        if (res.status === 200 || res.status === 201) return readVm(res, what);
        throw await failure(res, what);
      });
    },

    get(vmId, signal) {
      const what = `GET /v1/vms/${vmId}`;
      return abortable(what, signal, async () => {
        const res = await call('GET', `/v1/vms/${encodeURIComponent(vmId)}`, undefined, signal);
        if (res.status === 200) return readVm(res, what);
        if (res.status === 404) return discard(res, null);
        throw await failure(res, what);
      });
    },

    async destroy(vmId) {
      const what = `DELETE /v1/vms/${vmId}`;
      const res = await call('DELETE', `/v1/vms/${encodeURIComponent(vmId)}`, undefined, undefined);
      if (res.status === 200) return readVm(res, what);
      if (res.status === 404) return discard(res, null);
      throw await failure(res, what);
    },
  };
}

/**
 * Runs one call so that, once the caller's signal has aborted, whatever it throws (the fetch's own
 * abort, a body cut off mid-read and reported as unavailable) becomes a FleetCallAbortedError.
 */
async function abortable<T>(what: string, signal: AbortSignal | undefined, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (signal?.aborted) throw new FleetCallAbortedError(`fleet ${what} aborted by the caller`, { cause: signal.reason });
    throw error;
  }
}

async function readProblem(res: Response): Promise<{ code?: string; detail?: string; status: number }> {
  try {
    const body = (await res.json()) as { code?: unknown; detail?: unknown };
    return {
      status: res.status,
      code: typeof body.code === 'string' ? body.code : undefined,
      detail: typeof body.detail === 'string' ? body.detail : undefined,
    };
  } catch {
    return { status: res.status };
  }
}

/** Drains the body so the connection can be reused, then answers `value`. */
async function discard<T>(res: Response, value: T): Promise<T> {
  await res.body?.cancel().catch(() => undefined);
  return value;
}

/** Checks names, not `instanceof`: the abort DOMException may come from another realm (e.g. Jest). */
function describeFetchFailure(cause: unknown, timeoutMs: number): string {
  const err = cause as { name?: unknown; message?: unknown; cause?: { code?: unknown } } | null;
  if (err?.name === 'TimeoutError' || err?.name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const message = typeof err?.message === 'string' ? err.message : String(cause);
  const code = err?.cause?.code;
  return typeof code === 'string' ? `${message} (${code})` : message;
}
