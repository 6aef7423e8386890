import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema';

/**
 * The typed client of the vm-tenant API: openapi-fetch over the types generated from the served
 * OpenAPI document (`npm run client:generate`). Paths, parameters, bodies and answers are checked
 * by the compiler: `const { data, error, response } = await client.POST('/v1/vms', { body })`.
 * A problem answer comes back as `error` (the RFC 9457 body), never as a thrown exception.
 *
 * `client.use(middleware)` adds a step that sees each request before it is sent (after the bearer
 * header is set) and each response; request signing plugs in there.
 */
export type VmTenantClient = Client<paths>;

export interface VmTenantClientOptions {
  /** The API's origin, e.g. http://127.0.0.1:9221 */
  baseUrl: string;
  /** A vmt_… token sent as `Authorization: Bearer`; omit it for the public routes or to pass `headers` per request. */
  token?: string;
  /** Replaces the global fetch (a proxy agent, instrumentation, a test double for the outside). */
  fetch?: (request: Request) => Promise<Response>;
  /** Deadline of each request, connection and whole answer included. */
  timeoutMs?: number;
}

export const DEFAULT_TIMEOUT_MS = 30_000;

export function createVmTenantClient(options: VmTenantClientOptions): VmTenantClient {
  const baseFetch = options.fetch ?? ((request: Request) => fetch(request));
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: options.token === undefined ? {} : { Authorization: `Bearer ${options.token}` },
    // The deadline is added last, after every middleware, so a slow signing step cannot eat into it
    // and a caller's own signal still aborts the request.
    fetch: (request) => baseFetch(new Request(request, { signal: AbortSignal.any([request.signal, AbortSignal.timeout(timeoutMs)]) })),
  });
}
