import type { Middleware } from 'openapi-fetch';
import { createVmTenantClient, requestUnchecked } from '../../client';
import { signFetchRequest } from '../../client/request-signing';
import { CliError, ProblemError } from './cli-errors';
import type { ConnectionSettings } from './connection-settings';

export interface ApiClient {
  call<T = unknown>(
    method: string,
    path: string,
    options?: { body?: unknown; query?: Record<string, string | number | undefined>; headers?: Record<string, string>; authenticated?: boolean },
  ): Promise<T>;
}

const REQUEST_TIMEOUT_MS = 30_000;

/** Every page of a listing (`{items, next_cursor}`), following the cursor. */
export async function* allPages<T>(client: ApiClient, path: string, query: Record<string, string | number | undefined> = {}): AsyncGenerator<T[]> {
  let cursor: string | undefined = undefined;
  do {
    const page: { items: T[]; next_cursor: string | null } = await client.call('GET', path, { query: { ...query, cursor } });
    yield page.items;
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
}

const notJson = (status: number) => new CliError(`the API answered ${status} with a body that is not JSON`, 'bad_response');

function parseJson(text: string | undefined, status: number): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw notJson(status);
  }
}

/**
 * The API through the typed client (src/client). Each middleware sees every request before it is
 * sent, bearer header included. With a signing key, every authenticated request is signed last
 * (RFC 9421), so nothing changes it after. A problem answer becomes a ProblemError; the token never
 * appears in an error.
 */
export function createApiClient(settings: ConnectionSettings, middleware: Middleware[] = []): ApiClient {
  const client = createVmTenantClient({ baseUrl: settings.url, token: settings.token, timeoutMs: REQUEST_TIMEOUT_MS });
  const key = settings.signingKey;
  const signing: Middleware[] = key
    ? [{ onRequest: ({ request }) => (request.headers.has('authorization') ? signFetchRequest(request, key) : undefined) }]
    : [];
  client.use(...middleware, ...signing);
  return {
    async call(method, path, options = {}) {
      const headers: Record<string, string | null> = { Accept: 'application/json, application/problem+json', ...options.headers };
      if (options.authenticated === false) headers.Authorization = null;
      let answer: Awaited<ReturnType<typeof requestUnchecked>>;
      try {
        // As text: an answer that is not JSON is reported below, not thrown from inside the client.
        answer = await requestUnchecked(client, method, path, { body: options.body, query: options.query, headers, parseAs: 'text' });
      } catch (error) {
        const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error instanceof Error ? error.name : String(error));
        throw new CliError(`cannot reach the API at ${settings.url}: ${reason}`, 'api_unreachable', { cause: error });
      }
      const { response } = answer;
      // openapi-fetch parses a problem body itself and leaves it a string only when it is not JSON.
      const body: unknown = response.ok ? parseJson(answer.data as string | undefined, response.status) : answer.error;
      if (!response.ok && typeof body === 'string') throw notJson(response.status);
      if (!response.ok) {
        const problem = (body ?? {}) as Record<string, unknown>;
        const title = typeof problem.title === 'string' ? problem.title : response.statusText || `HTTP ${response.status}`;
        const detail = typeof problem.detail === 'string' ? problem.detail : undefined;
        const code = typeof problem.code === 'string' ? problem.code : `http_${response.status}`;
        throw new ProblemError(response.status, title, detail, code, problem);
      }
      return body as never;
    },
  };
}
