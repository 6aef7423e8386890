import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { getFreePort } from '../../src/devstack/free-port';
import { PostgresPart } from '../helpers/private-stack';

/**
 * The first `docker compose up -d` (issue 22, item 1): a service that waits for a healthy Postgres
 * must find a server on postgres:5432. The postgres image first runs a temporary server for its
 * init scripts that listens on the Unix socket only (listen_addresses=''); a healthcheck that probes
 * the socket passes then, and the one-shot services started on it (temporal-schema, migrate) fail
 * once, with nothing after them started. The healthcheck of each Compose file is run here, as it
 * stands, against a real Postgres in each of the two states.
 */
const ROOT = path.resolve(__dirname, '../..');
const COMPOSE_FILES = ['docker-compose.yml', 'docker-compose.production.yml'];

jest.setTimeout(120_000);

const asPostgres = process.getuid?.() === 0;
const binDir = PostgresPart.findBinDir();
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-compose-pg-'));
const dataDir = path.join(tmp, 'data');
let port = 0;

function asOwner(binary: string, args: string[]): { status: number | null; output: string } {
  const [command, argv] = asPostgres ? ['runuser', ['-u', 'postgres', '--', binary, ...args]] : [binary, args];
  const run = spawnSync(command as string, argv as string[], { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Starts the cluster as the image's entrypoint does: `socketOnly` is its temporary init server. */
function startServer(socketOnly: boolean): void {
  const listen = socketOnly ? "''" : '127.0.0.1';
  const started = asOwner(path.join(binDir, 'pg_ctl'), [
    '-D',
    dataDir,
    '-o',
    `-p ${port} -k ${tmp} -c listen_addresses=${listen}`,
    '-l',
    path.join(tmp, 'pg.log'),
    '-w',
    '-t',
    '60',
    'start',
  ]);
  if (started.status !== 0) throw new Error(`pg_ctl start: ${started.output}`);
}

function stopServer(): void {
  asOwner(path.join(binDir, 'pg_ctl'), ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
}

/** The healthcheck's command, run here with the socket directory and port of the test cluster as its environment defaults. */
function runHealthcheck(file: string): number | null {
  const compose = parse(readFileSync(path.join(ROOT, file), 'utf8'), { merge: true }) as { services: Record<string, { healthcheck?: { test: string[] } }> };
  const [kind, command, ...args] = compose.services.postgres!.healthcheck!.test;
  expect(kind).toBe('CMD');
  expect(command).toBe('pg_isready');
  // In the container the socket is /var/run/postgresql and the port 5432; here PGHOST/PGPORT say where
  // the test cluster's are. An explicit -h or -p in the healthcheck wins over them, as in the container.
  const portArgs = args.map((arg, i) => (args[i - 1] === '-p' ? String(port) : arg));
  return spawnSync(path.join(binDir, 'pg_isready'), portArgs, { env: { ...process.env, PGHOST: tmp, PGPORT: String(port) }, encoding: 'utf8' }).status;
}

beforeAll(async () => {
  port = await getFreePort();
  if (asPostgres) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
    chownSync(tmp, uid, gid);
    chmodSync(tmp, 0o711);
  }
  const init = asOwner(path.join(binDir, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync']);
  if (init.status !== 0) throw new Error(`initdb: ${init.output}`);
});

afterAll(() => {
  stopServer();
  rmSync(tmp, { recursive: true, force: true });
});

describe('the Postgres healthcheck of the Compose files', () => {
  test.each(COMPOSE_FILES)(
    'when only the init server runs (socket only), then the healthcheck of %s fails; once the server listens on TCP, it passes',
    (file) => {
      startServer(true);
      try {
        // The probe can tell: the same pg_isready over the socket says the init server accepts connections.
        expect(spawnSync(path.join(binDir, 'pg_isready'), ['-h', tmp, '-p', String(port), '-U', 'postgres'], { encoding: 'utf8' }).status).toBe(0);
        expect(runHealthcheck(file)).not.toBe(0);
      } finally {
        stopServer();
      }
      startServer(false);
      try {
        expect(asOwner(path.join(binDir, 'psql'), ['-h', tmp, '-p', String(port), '-U', 'postgres', '-c', 'create database vm_tenant']).output).toMatch(
          /CREATE DATABASE|already exists/,
        );
        expect(runHealthcheck(file)).toBe(0);
      } finally {
        stopServer();
      }
    },
  );
});

describe("temporal-schema's setup script", () => {
  test('when Postgres refuses the first attempts, then the script retries each database and completes instead of failing the one-shot service', () => {
    const bin = path.join(tmp, 'stub-bin');
    const log = path.join(tmp, 'sql-tool.log');
    execFileSync('mkdir', ['-p', bin]);
    // A temporal-sql-tool that fails its first three calls (Postgres not reachable yet), then succeeds.
    writeFileSync(path.join(bin, 'temporal-sql-tool'), `#!/bin/sh\necho "$*" >> ${log}\nn=$(wc -l < ${log})\n[ "$n" -gt 3 ]\n`, { mode: 0o755 });
    writeFileSync(path.join(bin, 'sleep'), '#!/bin/sh\n', { mode: 0o755 });
    const run = spawnSync('sh', [path.join(ROOT, 'docker/temporal/setup-schema.sh')], {
      env: { PATH: `${bin}:${process.env.PATH}`, POSTGRES_SEEDS: 'postgres', POSTGRES_USER: 'temporal', POSTGRES_PWD: 'pw' },
      encoding: 'utf8',
    });
    expect({ status: run.status, stdout: run.stdout.trim() }).toEqual({ status: 0, stdout: 'temporal schema ready' });
    const calls = readFileSync(log, 'utf8').trim().split('\n');
    // Both databases end with their update-schema, after the failed attempts were made again.
    expect(calls.filter((call) => /update-schema/.test(call)).map((call) => /--db (\S+)/.exec(call)?.[1])).toEqual(
      expect.arrayContaining(['temporal', 'temporal_visibility']),
    );
    expect(calls.length).toBeGreaterThan(6);
  });
});
