import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getFreePort } from '../../src/devstack/free-port';
import { startStack } from '../../src/devstack/stack';
import { checkResponsesFrom } from './openapi-response-check';
import { testEnv } from './test-env';

export interface ApiProcess {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/** Runs the real API entry point as its own process (a stack of one) against this run's services. */
export async function startApiProcess(env: Record<string, string>): Promise<ApiProcess> {
  const t = testEnv();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-api-'));
  const removeDataDir = () => rmSync(dataDir, { recursive: true, force: true });
  const stack = await startStack({
    env: {
      PATH: process.env.PATH,
      PORT: String(await getFreePort()),
      DATA_DIR: dataDir,
      TEMPORAL_ADDRESS: t.temporalAddress,
      DATABASE_URL: t.databaseUrl,
      MIGRATION_DATABASE_URL: t.migrationDatabaseUrl,
      NATS_URL: t.natsUrl,
      ...env,
    },
    services: [{ kind: 'api' }],
    processes: { onLine: () => undefined, readyTimeoutMs: 30_000 },
  }).catch((error: unknown) => {
    removeDataDir();
    throw error;
  });
  const api = stack.service('api');
  // OpenAPI response check (openapi-response-check.ts): every answer of this API is checked against its document.
  await checkResponsesFrom(api.url);
  return {
    url: api.url,
    output: () => api.process!.recentOutput().join('\n'),
    async stop() {
      await stack.stop();
      removeDataDir();
    },
  };
}
