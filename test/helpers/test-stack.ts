import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { Kysely } from 'kysely';
import { insertToken } from '../../src/auth/token.repository';
import { generateToken, hashToken, newTokenId } from '../../src/auth/token-format';
import type { Config } from '../../src/config/config';
import type { ApiMetrics } from '../../src/metrics/api-metrics';
import { createWorkerMetrics, type WorkerMetrics } from '../../src/metrics/worker-metrics';
import type { Database } from '../../src/db/tables';
import { startSimulator, type RunningSimulator } from '../../src/fleet-simulator/start-simulator';
import { loadSimulatorConfig } from '../../src/fleet-simulator/simulator-config';
import { createLogger, type Logger } from '../../src/logging/logger';
import type { TenantWorkflowGateway } from '../../src/tenants/tenant-workflow-gateway';
import { buildWorker, type BuiltWorker } from '../../src/workers/build-worker';
import type { TenantLimits } from '../../src/shared/tenant-workflow.state';
import { serveApi } from './api-server';
import { checkResponsesFrom } from './openapi-response-check';
import { testBundle } from './workflow-bundle';
import { testConfig, uniqueName } from './test-env';
import { deleteStreams } from '../../src/devstack/nats-streams';

export { eventually } from './eventually';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface TestStack {
  config: Config;
  db: Kysely<Database>;
  temporal: Client;
  gateway: TenantWorkflowGateway;
  fleet: RunningSimulator;
  worker: BuiltWorker | null;
  apiUrl: string;
  adminToken: string;
  logLines: string[];
  apiMetrics: ApiMetrics;
  workerMetrics: WorkerMetrics;
  request<T = any>(
    method: string,
    path: string,
    options?: { token?: string; body?: unknown; headers?: Record<string, string>; rawBody?: string },
  ): Promise<ApiResponse<T>>;
  startWorker(): Promise<BuiltWorker>;
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

export interface TestStackOptions {
  fleetBootMs?: number;
  withWorker?: boolean;
  continueAsNewAfterUpdates?: number;
  limits?: Partial<TenantLimits>;
  configOverrides?: Record<string, string>;
}

/** A log that keeps every line, so tests can prove no secret was ever logged. */
function capturingLogger(name: string, lines: string[]): Logger {
  return createLogger({ name, level: 'debug', destination: { write: (line: string) => void lines.push(line) } });
}

/** The options that are configuration variables, as the variables (so they go through loadConfig). */
function optionsAsConfig(options: TestStackOptions): Record<string, string> {
  const vars: Record<string, string | undefined> = {
    TENANT_WORKFLOW_UPDATE_LIMIT: options.continueAsNewAfterUpdates?.toString(),
    TENANT_MAX_IN_FLIGHT: options.limits?.max_in_flight?.toString(),
    VM_BOOT_TIMEOUT_MS: options.limits?.boot_timeout_ms?.toString(),
  };
  return Object.fromEntries(Object.entries(vars).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/**
 * The whole service in one test process, on real parts: the API and the worker wired by buildApi and
 * buildWorker (as their entry points are), the API on a random port, the worker on this file's own
 * task queue, the fleet simulator over HTTP, this run's Temporal, Postgres and NATS.
 */
let runtimeInstalled = false;

export async function startTestStack(options: TestStackOptions = {}): Promise<TestStack> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    runtimeInstalled = true;
  }
  const stream = uniqueName('S').replace(/-/g, '_').toUpperCase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-test-'));
  const fleet = await startSimulator({
    config: loadSimulatorConfig({
      FLEET_PORT: '0',
      FLEET_STATE_FILE: path.join(dataDir, 'fleet-state.json'),
      FLEET_BOOT_MS: String(options.fleetBootMs ?? 50),
    }),
  });
  const config = testConfig({
    TEMPORAL_TASK_QUEUE: uniqueName('tq'),
    NATS_STREAM: stream,
    NATS_SUBJECT_PREFIX: stream.toLowerCase(),
    FLEET_URL: fleet.url,
    DATA_DIR: dataDir,
    // Tests send many bad tokens from one address on purpose; authentication-guards tests the limiter.
    AUTH_FAILURES_PER_MINUTE: '1000000',
    ...optionsAsConfig(options),
    ...options.configOverrides,
  });
  const logLines: string[] = [];
  const served = await serveApi(config, { log: capturingLogger('test', logLines), ledgerCheckpointKey: async () => TEST_CHECKPOINT_PUBLIC_KEY });
  const { api, url: apiUrl } = served;
  const { db } = api;
  // Each stack has its own platform-admin token row. The single bootstrap row (ensureAdminToken) is
  // re-pointed by every API process that starts against this run's database (e2e, rate limits).
  const adminToken = generateToken();
  await insertToken(db, { token_id: newTokenId(), tenant_id: null, scope: 'service:admin', token_hash: hashToken(adminToken), created_at: new Date() });
  // OpenAPI response check (openapi-response-check.ts): every answer of this API is checked against its document.
  await checkResponsesFrom(apiUrl);

  const workerMetrics = createWorkerMetrics();
  let worker: BuiltWorker | null = null;
  let workerRun: Promise<void> | null = null;
  const bundle = await testBundle();
  const stack: TestStack = {
    config,
    db,
    temporal: api.temporal,
    gateway: api.tenantWorkflows,
    fleet,
    get worker() {
      return worker;
    },
    apiUrl,
    adminToken,
    logLines,
    apiMetrics: api.metrics,
    workerMetrics,
    async request(method, route, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
      let body: string | undefined = opts.rawBody;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${apiUrl}${route}`, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: response.status, headers: response.headers, body: parsed as any };
    },
    async startWorker() {
      worker = await buildWorker(config, {
        log: capturingLogger('worker', logLines),
        metrics: workerMetrics,
        workflowBundle: bundle,
        bootPollMs: 20,
        signCheckpoints: false,
      });
      workerRun = worker.run();
      return worker;
    },
    async stopWorker() {
      await worker?.close();
      await workerRun;
      worker = null;
    },
    async close() {
      await stack.stopWorker();
      await served.close();
      await fleet.close();
      // Leave nothing behind on the shared NATS store or in /tmp.
      await deleteStreams(config.natsUrl, [config.natsStream, config.ledgerCheckpointStream]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  if (options.withWorker !== false) await stack.startWorker();
  return stack;
}

/** The test stacks' ledger checkpoint key (the API only publishes its public half). */
export const TEST_CHECKPOINT_PUBLIC_KEY = generateKeyPairSync('ed25519').publicKey;

export const SAMPLE_PUBKEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFS6gN+61SWOguzCwIDCVr+rQWxQPArA323Uq2D18csN admin@acme';

/** Registers a tenant as the platform admin and issues it a tenant-admin token. */
export async function createTenant(stack: TestStack, overrides: Record<string, unknown> = {}): Promise<{ tenantId: string; token: string; tokenId: string }> {
  const tenantId = uniqueName('t')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  const created = await stack.request('POST', '/v1/tenants', {
    token: stack.adminToken,
    body: { tenant_id: tenantId, display_name: `Tenant ${tenantId}`, max_vms: 10, storage_quota_gb: 100, api_rate_limit_rpm: 600, ...overrides },
  });
  if (created.status !== 201) throw new Error(`tenant creation failed: ${created.status} ${JSON.stringify(created.body)}`);
  const issued = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
    token: stack.adminToken,
    body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'service:tenant-admin', expires_in_seconds: 3600 },
  });
  if (issued.status !== 201) throw new Error(`token issue failed: ${issued.status} ${JSON.stringify(issued.body)}`);
  return { tenantId, token: issued.body.token, tokenId: issued.body.token_id };
}

export const SMALL_VM = Object.freeze({ vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12' });
