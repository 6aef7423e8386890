/**
 * Ledger appends per second, with 1 and with 50 tenants writing at once.
 *
 *   node --import tsx bench/ledger-appends.ts [--source DIR] [--seconds N] [--writers N] [--out FILE]
 *
 * Creates a fresh database vm_tenant_bench_ledger_<ms>_<hex> (dropped at the end) on the server of
 * MIGRATION_DATABASE_URL (default postgres@127.0.0.1:5432), migrates it with the migrations of
 * --source (default: this checkout) and appends through that checkout's own ledger code, as the
 * service login: `--source` pointed at another checkout (e.g. `git archive main`) measures "before".
 * Each round runs `writers` concurrent appenders for `seconds`, spread over the tenants round-robin,
 * once with one transaction per append (tenant and token routes) and once through the LedgerWriter
 * (group commit: the VM routes and the worker). Prints a Markdown table; --out also writes the
 * figures as JSON (bench/results/ledger-appends-*.json).
 */
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { Kysely } from 'kysely';
import { loadConfig } from '../src/config/config';
import { createScratchDatabase, withDatabase } from '../src/devstack/postgres-admin';
import { machineInfo, summarize, type LatencySummary } from './stats';

interface LedgerCode {
  appendAuditEvent(db: unknown, event: unknown): Promise<unknown>;
  LedgerWriter: new (db: unknown) => { run<T>(unit: (trx: unknown) => Promise<T>): Promise<T> };
  migrateToLatest(url: string): Promise<void>;
  createDatabase(url: string, options: { max: number; applicationName: string }): Kysely<unknown>;
}

async function loadLedgerCode(root: string): Promise<LedgerCode> {
  const load = (file: string) => import(path.join(root, file)) as Promise<Record<string, unknown>>;
  const [repository, writer, migrate, database] = await Promise.all([
    load('src/ledger/ledger-append.ts'),
    load('src/ledger/ledger-writer.ts'),
    load('src/db/migrate.ts'),
    load('src/db/database.ts'),
  ]);
  return { ...repository, ...writer, ...migrate, ...database } as unknown as LedgerCode;
}

interface Round {
  tenants: number;
  path: 'transaction per append' | 'LedgerWriter';
  appends_per_s: number;
  latency: LatencySummary;
}

async function round(code: LedgerCode, db: Kysely<unknown>, tenants: number, writers: number, seconds: number, viaWriter: boolean): Promise<Round> {
  const writer = new code.LedgerWriter(db);
  const tenantIds = Array.from({ length: tenants }, (_, i) => `bench-${tenants}-${i}`);
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  const appendOne = (tenantId: string) => {
    const event = {
      event_id: randomUUID(),
      event_type: 'VM_RUNNING',
      tenant_id: tenantId,
      vm_id: `vm-${randomUUID().slice(0, 8)}`,
      context: { request_id: `req-${randomUUID()}`, actor_token_id: 'tok_bench', actor_scope: 'vm:write', source_ip: '127.0.0.1', user_agent: 'bench' },
      details: { vcpus: 2, memory_mb: 2048, image: 'ubuntu-24.04' },
    };
    return viaWriter ? writer.run((trx) => code.appendAuditEvent(trx, event)) : code.appendAuditEvent(db, event);
  };
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const tenantId = tenantIds[w % tenants]!;
      while (performance.now() < deadline) {
        const started = performance.now();
        await appendOne(tenantId);
        latencies.push(performance.now() - started);
      }
    }),
  );
  return {
    tenants,
    path: viaWriter ? 'LedgerWriter' : 'transaction per append',
    appends_per_s: Math.round((latencies.length / seconds) * 10) / 10,
    latency: summarize(latencies),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { source: { type: 'string' }, seconds: { type: 'string' }, writers: { type: 'string' }, out: { type: 'string' } } });
  const source = path.resolve(values.source ?? path.join(__dirname, '..'));
  const seconds = Number(values.seconds ?? 8);
  const writers = Number(values.writers ?? 50);
  const config = loadConfig();
  const code = await loadLedgerCode(source);
  const database = await createScratchDatabase(config.migrationDatabaseUrl, 'vm_tenant_bench_ledger', { migrate: false });
  const db = code.createDatabase(withDatabase(config.databaseUrl, database.name), { max: 20, applicationName: 'bench-ledger' });
  const rounds: Round[] = [];
  try {
    await code.migrateToLatest(database.url);
    for (const viaWriter of [false, true]) {
      for (const tenants of [1, 50]) {
        rounds.push(await round(code, db, tenants, writers, seconds, viaWriter));
        process.stderr.write(`[bench-ledger] ${JSON.stringify(rounds.at(-1))}\n`);
      }
    }
  } finally {
    await db.destroy();
    await database.drop();
  }
  console.log(`Ledger appends (${writers} concurrent writers, ${seconds} s per round, code from ${source})\n`);
  console.log('| path | tenants | appends/s | p50 / p99 ms |');
  console.log('|---|---|---|---|');
  for (const r of rounds) console.log(`| ${r.path} | ${r.tenants} | ${r.appends_per_s} | ${r.latency.p50_ms} / ${r.latency.p99_ms} |`);
  if (values.out)
    writeFileSync(values.out, `${JSON.stringify({ at: new Date().toISOString(), source, writers, seconds, machine: machineInfo(), rounds }, null, 2)}\n`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
