import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getFreePort } from '../../src/devstack/free-port';
import { checkResponsesFrom } from './openapi-response-check';
import { testEnv } from './test-env';

const ROOT = path.resolve(__dirname, '../..');

export interface ApiProcess {
  url: string;
  process: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Runs the real API entry point (src/api/server.ts) as its own process against this run's services. */
export async function startApiProcess(env: Record<string, string>): Promise<ApiProcess> {
  const port = await getFreePort();
  const t = testEnv();
  let output = '';
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/api/server.ts')], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-api-')),
      TEMPORAL_ADDRESS: t.temporalAddress,
      DATABASE_URL: t.databaseUrl,
      MIGRATION_DATABASE_URL: t.migrationDatabaseUrl,
      NATS_URL: t.natsUrl,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`API process exited: ${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`API process did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  // OpenAPI response check (openapi-response-check.ts): every answer of this API is checked against its document.
  await checkResponsesFrom(url);
  return {
    url,
    process: child,
    output: () => output,
    stop(signal = 'SIGTERM') {
      if (child.exitCode !== null) return Promise.resolve(child.exitCode);
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      child.kill(signal);
      return exited;
    },
  };
}
