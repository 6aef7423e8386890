import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { insertToken } from '../../src/auth/token.repository';
import { generateToken, hashToken, newTokenId } from '../../src/auth/token-format';
import { connect, type JetStreamManager, type NatsConnection } from 'nats';
import type { Database } from '../../src/db/tables';
import { ensureCheckpointStream } from '../../src/ledger/checkpoint-stream';
import type { CheckpointSigningKey } from '../../src/ledger/checkpoint-key';
import { LedgerCheckpointSigner, type CheckpointSignerOptions } from '../../src/ledger/checkpoint-signer';
import { createLogger } from '../../src/logging/logger';
import { createLedgerTestDatabase, type LedgerTestDatabase } from './ledger-database';
import { testEnv, uniqueName } from './test-env';

/**
 * What every checkpoint test stands on: one NATS connection for the file, and per test a migrated
 * scratch ledger, a checkpoint stream of its own (created as a worker start does), a key directory,
 * and the signers the test starts, all removed after it.
 */
export interface CheckpointWorld {
  nc: NatsConnection;
  jsm: JetStreamManager;
  testDb: LedgerTestDatabase;
  /** The service role's pool. */
  service: Kysely<Database>;
  stream: string;
  prefix: string;
  keyDir: string;
  /** A signer on this world's ledger and stream, stopped after the test. Defaults: silent, no time trigger, every 3 entries. */
  signer(key: CheckpointSigningKey, options?: Partial<CheckpointSignerOptions>): LedgerCheckpointSigner;
  /** Runs `cleanUp` after the test, once its signers stopped and before its database goes (a pool of the test's own). */
  afterThisTest(cleanUp: () => Promise<unknown>): void;
}

export interface CheckpointWorldOptions {
  /** Goes into the database, stream and subject names. */
  label: string;
  /** Connections in the service role's pool. */
  pool?: number;
}

/** Registers the hooks; the returned object is filled in before each test. */
export function useCheckpointWorld({ label, pool = 4 }: CheckpointWorldOptions): CheckpointWorld {
  const world = {} as CheckpointWorld;
  let signers: LedgerCheckpointSigner[] = [];
  let cleanUps: Array<() => Promise<unknown>> = [];
  world.afterThisTest = (cleanUp) => void cleanUps.push(cleanUp);
  beforeAll(async () => {
    world.nc = await connect({ servers: testEnv().natsUrl });
    world.jsm = await world.nc.jetstreamManager();
  });
  afterAll(async () => {
    await world.nc.close();
  });
  beforeEach(async () => {
    world.testDb = await createLedgerTestDatabase(label);
    world.service = world.testDb.serviceDb({ max: pool });
    world.stream = uniqueName(label.toUpperCase())
      .toUpperCase()
      .replace(/[^A-Z0-9_-]/g, '_');
    world.prefix = uniqueName(label).replace(/[^a-z0-9_-]/gi, '_');
    await ensureCheckpointStream(world.jsm, world.stream, world.prefix);
    world.keyDir = await mkdtemp(path.join(tmpdir(), `${label}-keys-`));
    world.signer = (key, options = {}) => {
      const signer = new LedgerCheckpointSigner({
        db: world.service,
        js: world.nc.jetstream(),
        jsm: world.jsm,
        stream: world.stream,
        subjectPrefix: world.prefix,
        key,
        everyEntries: 3,
        everyMs: 3_600_000,
        log: createLogger({ name: 'signer', level: 'silent' }),
        ...options,
      });
      signers.push(signer);
      return signer;
    };
  });
  afterEach(async () => {
    await Promise.all(signers.map((signer) => signer.stop()));
    signers = [];
    for (const cleanUp of cleanUps) await cleanUp();
    cleanUps = [];
    // deny_delete and deny_purge protect messages; deleting the whole stream is what test clean-up
    // (and an attacker with JetStream admin rights, see docs/audit-ledger.md) can still do.
    await world.jsm.streams.delete(world.stream).catch(() => undefined);
    await rm(world.keyDir, { recursive: true, force: true });
    await world.testDb.drop();
  });
  return world;
}

/** A tenant and an audit:read token of it, straight in the ledger's database: who reads proofs in these tests. Answers the token. */
export async function tenantWithAuditToken(service: Kysely<Database>, tenantId: string): Promise<string> {
  const at = new Date();
  await service
    .insertInto('tenants')
    .values({ tenant_id: tenantId, display_name: tenantId, max_vms: 1, storage_quota_gb: 1, api_rate_limit_rpm: 100_000, created_at: at, updated_at: at })
    .execute();
  const token = generateToken();
  await insertToken(service, { token_id: newTokenId(), tenant_id: tenantId, scope: 'audit:read', token_hash: hashToken(token), created_at: at });
  return token;
}
