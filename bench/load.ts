import autocannon from 'autocannon';
import { round, summarize, type LatencySummary } from './stats';

export interface LoadOptions {
  url: string;
  method?: 'GET' | 'POST';
  body?: unknown;
  /** Bearer tokens used in turn, one per request (several tenants share one load run). */
  tokens: readonly string[];
  /** Paths used in turn, one per request; defaults to the path of `url`. */
  paths?: readonly string[];
  connections: number;
  /** Seconds; or `amount` requests. */
  duration?: number;
  amount?: number;
}

export interface LoadResult {
  readonly connections: number;
  readonly tenants: number;
  readonly requests: number;
  readonly elapsed_s: number;
  /** Answers per second, all statuses. */
  readonly per_s: number;
  readonly status_counts: Readonly<Record<string, number>>;
  /** Latency of every answer (autocannon's own histogram keeps only 2xx, in whole ms). */
  readonly latency: LatencySummary;
  readonly errors: number;
  readonly timeouts: number;
}

/** One autocannon run; latencies are taken from its `response` events, unrounded and for every status. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const statusCounts: Record<string, number> = {};
  let next = 0;
  const started = Date.now();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: options.method ?? 'GET',
        connections: options.connections,
        ...(options.amount === undefined ? { duration: options.duration } : { amount: options.amount }),
        timeout: 30,
        headers: options.body === undefined ? {} : { 'content-type': 'application/json' },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        requests: [
          {
            setupRequest: (request) => {
              const i = next++;
              const headers = { ...request.headers, authorization: `Bearer ${options.tokens[i % options.tokens.length]}` };
              const path = options.paths ? options.paths[i % options.paths.length] : request.path;
              return { ...request, headers, path };
            },
          },
        ],
      },
      (error: unknown, res: autocannon.Result) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(res)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      latencies.push(responseTime);
      statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
    });
  });
  const elapsed = (Date.now() - started) / 1000;
  return {
    connections: options.connections,
    tenants: options.tokens.length,
    requests: latencies.length,
    elapsed_s: round(elapsed),
    per_s: round(latencies.length / elapsed, 1),
    status_counts: statusCounts,
    latency: summarize(latencies),
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

export function count5xx(statusCounts: Readonly<Record<string, number>>): number {
  return Object.entries(statusCounts).reduce((sum, [status, n]) => (Number(status) >= 500 ? sum + n : sum), 0);
}
