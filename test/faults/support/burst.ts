/**
 * The client side of a fault test: tenants, and a burst of spawns and destroys sent the way a
 * careful client sends them — every request with an Idempotency-Key, retried with the same key on
 * a network error, a 5xx, a 409 idempotency_key_in_flight or a 429 rate_limited, until it gets a
 * final answer. Every answer is recorded, so a test can say what the API answered during a fault.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { vmIdForIdempotencyKey } from '../../../src/ledger/deterministic-ids';
import type { PrivateStack } from '../../helpers/private-stack';

export const SMALL_VM = Object.freeze({ vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12' });
const SAMPLE_PUBKEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFS6gN+61SWOguzCwIDCVr+rQWxQPArA323Uq2D18csN admin@acme';

export interface HttpAnswer {
  status: number;
  headers: Headers;
  body: any;
}

/** One attempt: an HTTP answer, or the network error (connection refused, reset, timeout) as a string. */
export async function call(
  baseUrl: string,
  method: string,
  route: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* keep the text */
  }
  return { status: response.status, headers: response.headers, body };
}

export interface Tenant {
  tenantId: string;
  token: string;
}

/** Registers `count` tenants as the platform admin (retrying, the stack may just have started). */
export async function createTenants(
  stack: PrivateStack,
  count: number,
  prefix: string,
  quota: { max_vms: number; storage_quota_gb: number } = { max_vms: 100, storage_quota_gb: 1000 },
): Promise<Tenant[]> {
  const tenants: Tenant[] = [];
  for (let i = 0; i < count; i++) {
    const tenantId = `${prefix}-${i}`;
    const created = await retryUntilFinal(() =>
      call(stack.apiUrl, 'POST', '/v1/tenants', {
        token: stack.adminToken,
        body: { tenant_id: tenantId, display_name: `Tenant ${tenantId}`, ...quota, api_rate_limit_rpm: 100_000 },
      }),
    );
    if (created.status !== 201) throw new Error(`tenant ${tenantId}: ${created.status} ${JSON.stringify(created.body)}`);
    const issued = await retryUntilFinal(() =>
      call(stack.apiUrl, 'POST', `/v1/tenants/${tenantId}/tokens`, {
        token: stack.adminToken,
        body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'service:tenant-admin', expires_in_seconds: 3600 },
      }),
    );
    if (issued.status !== 201) throw new Error(`token for ${tenantId}: ${issued.status} ${JSON.stringify(issued.body)}`);
    tenants.push({ tenantId, token: issued.body.token });
  }
  return tenants;
}

async function retryUntilFinal(attempt: () => Promise<HttpAnswer>, deadlineMs = 60_000): Promise<HttpAnswer> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const answer = await attempt();
      if (answer.status < 500) return answer;
    } catch {
      /* retry */
    }
    if (Date.now() > deadline) throw new Error('no final answer before the deadline');
    await sleep(250);
  }
}

/** What the API answered to one attempt: an HTTP status, or `network` for a failed connection. */
export interface Attempt {
  /** When the answer (or the network error) came. */
  at: number;
  /** How long the attempt took: the latency a client saw. */
  ms: number;
  status: number | 'network';
  code?: string;
  contentType?: string | null;
  retryAfter?: string | null;
}

export interface ClientRequest {
  kind: 'spawn' | 'destroy';
  tenantId: string;
  key: string;
  vmId: string;
  attempts: Attempt[];
  /** The final answer's status, or null when the client gave up. */
  final: number | null;
  finalBody?: any;
}

function retryable(answer: HttpAnswer): boolean {
  if (answer.status >= 500) return true;
  if (answer.status === 409 && answer.body?.code === 'idempotency_key_in_flight') return true;
  if (answer.status === 429 && answer.body?.code === 'rate_limited') return true;
  return false;
}

/** Sends one request with its Idempotency-Key until a final answer (or the deadline). */
async function sendWithRetries(request: ClientRequest, send: () => Promise<HttpAnswer>, deadline: number): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    let answer: HttpAnswer | null = null;
    const started = Date.now();
    try {
      answer = await send();
      request.attempts.push({
        at: Date.now(),
        ms: Date.now() - started,
        status: answer.status,
        code: answer.body?.code,
        contentType: answer.headers.get('content-type'),
        retryAfter: answer.headers.get('retry-after'),
      });
    } catch {
      request.attempts.push({ at: Date.now(), ms: Date.now() - started, status: 'network' });
    }
    if (answer && !retryable(answer)) {
      request.final = answer.status;
      request.finalBody = answer.body;
      return;
    }
    if (Date.now() > deadline) return;
    await sleep(Math.min(2_000, 200 * 2 ** Math.min(attempt, 4)) * (0.5 + Math.random()));
  }
}

export interface BurstOptions {
  /** Spawns per tenant. */
  spawns: number;
  /** Every `destroyEvery`-th spawned VM is destroyed right after its 202 (0: none). */
  destroyEvery?: number;
  /** Requests in flight per tenant. */
  concurrency?: number;
  /** Pause of each client between requests, so the burst spans the fault. */
  paceMs?: number;
  /** How long a request is retried before the client gives up. */
  retryForMs?: number;
  /** Per-attempt HTTP timeout. */
  attemptTimeoutMs?: number;
  keyPrefix: string;
  /** API processes to spread the attempts over, as a load balancer would (default: the stack's one). */
  apiUrls?: readonly string[];
}

export interface Burst {
  readonly requests: ClientRequest[];
  /** Resolves once `n` requests have a final answer. */
  whenFinal(n: number): Promise<void>;
  /** Resolves when every request has a final answer or was given up. */
  done: Promise<void>;
}

/** Starts a burst of spawns (and destroys of some of the spawned VMs) over the given tenants. */
export function startBurst(stack: PrivateStack, tenants: readonly Tenant[], options: BurstOptions): Burst {
  const requests: ClientRequest[] = [];
  const concurrency = options.concurrency ?? 3;
  const retryFor = options.retryForMs ?? 120_000;
  const timeoutMs = options.attemptTimeoutMs ?? 20_000;
  const finalCount = () => requests.filter((r) => r.final !== null).length;
  const apiUrls = options.apiUrls ?? [stack.apiUrl];
  let turn = 0;
  // Each attempt goes to the next API: a retry after one died reaches another.
  const apiUrl = () => apiUrls[turn++ % apiUrls.length]!;

  const runTenant = async (tenant: Tenant) => {
    let next = 0;
    const lane = async () => {
      for (;;) {
        const index = next++;
        if (index >= options.spawns) return;
        const key = `${options.keyPrefix}-${tenant.tenantId}-spawn-${index}`;
        const spawn: ClientRequest = {
          kind: 'spawn',
          tenantId: tenant.tenantId,
          key,
          vmId: vmIdForIdempotencyKey(tenant.tenantId, key),
          attempts: [],
          final: null,
        };
        requests.push(spawn);
        await sendWithRetries(
          spawn,
          () => call(apiUrl(), 'POST', '/v1/vms', { token: tenant.token, body: SMALL_VM, headers: { 'idempotency-key': key }, timeoutMs }),
          Date.now() + retryFor,
        );
        if (spawn.final === 202 && options.destroyEvery && index % options.destroyEvery === 0) {
          const destroyKey = `${options.keyPrefix}-${tenant.tenantId}-destroy-${index}`;
          const destroy: ClientRequest = { kind: 'destroy', tenantId: tenant.tenantId, key: destroyKey, vmId: spawn.vmId, attempts: [], final: null };
          requests.push(destroy);
          await sendWithRetries(
            destroy,
            () => call(apiUrl(), 'DELETE', `/v1/vms/${spawn.vmId}`, { token: tenant.token, headers: { 'idempotency-key': destroyKey }, timeoutMs }),
            Date.now() + retryFor,
          );
        }
        if (options.paceMs) await sleep(options.paceMs);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  };

  const done = Promise.all(tenants.map(runTenant)).then(() => undefined);
  return {
    requests,
    done,
    async whenFinal(n) {
      let finished = false;
      void done.then(() => (finished = true));
      while (!finished && finalCount() < n) await sleep(50);
    },
  };
}

/** Every attempt made between two instants, for assertions about what the API answered during a fault. */
export function attemptsBetween(requests: readonly ClientRequest[], from: number, to: number): Attempt[] {
  return requests.flatMap((r) => r.attempts).filter((a) => a.at >= from && a.at <= to);
}

/**
 * Every attempt that took longer than `boundMs` or ended without an HTTP answer (the client's own
 * timeout, a reset): a request that was not answered within its deadline. Empty when all were.
 */
export function unansweredInTime(requests: readonly ClientRequest[], boundMs: number): Array<{ key: string; status: Attempt['status']; ms: number }> {
  return requests.flatMap((r) => r.attempts.filter((a) => a.ms > boundMs || a.status === 'network').map((a) => ({ key: r.key, status: a.status, ms: a.ms })));
}

/** A count of statuses, e.g. { 202: 10, 503: 4, network: 2 }, for readable failure messages. */
export function statusHistogram(attempts: readonly Attempt[]): Record<string, number> {
  const histogram: Record<string, number> = {};
  for (const a of attempts) {
    const key = a.code ? `${a.status} ${a.code}` : String(a.status);
    histogram[key] = (histogram[key] ?? 0) + 1;
  }
  return histogram;
}
