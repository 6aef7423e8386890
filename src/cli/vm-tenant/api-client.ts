import { signedHeaders } from '../../client/request-signing';
import { CliError, ProblemError } from './cli-errors';
import type { ConnectionSettings } from './connection-settings';

export interface ApiClient {
  call<T = unknown>(method: string, path: string, options?: { body?: unknown; query?: Record<string, string | number | undefined>; headers?: Record<string, string>; authenticated?: boolean }): Promise<T>;
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

/** The API over fetch. A problem answer becomes a ProblemError; the token never appears in an error. */
export function createApiClient(settings: ConnectionSettings): ApiClient {
  return {
    async call(method, path, options = {}) {
      const url = new URL(settings.url + path);
      for (const [key, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(key, String(value));
      let headers: Record<string, string> = { Accept: 'application/json, application/problem+json', ...options.headers };
      if (options.authenticated !== false) headers.Authorization = `Bearer ${settings.token}`;
      if (options.body !== undefined) headers['Content-Type'] = 'application/json';
      const requestBody = options.body === undefined ? undefined : JSON.stringify(options.body);
      if (settings.signingKey && options.authenticated !== false) headers = await signedHeaders({ method, url, headers, body: requestBody }, settings.signingKey);
      let response: Response;
      try {
        response = await fetch(url, { method, headers, body: requestBody, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (error) {
        const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error instanceof Error ? error.name : String(error));
        throw new CliError(`cannot reach the API at ${settings.url}: ${reason}`, 'api_unreachable', { cause: error });
      }
      const text = await response.text();
      let body: unknown = undefined;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          throw new CliError(`the API answered ${response.status} with a body that is not JSON`, 'bad_response');
        }
      }
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
