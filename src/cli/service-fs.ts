import { access } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { sql, type Kysely } from 'kysely';
import { ConfigError, loadConfig } from '../config/config';
import { redactUrl } from '../connections/redact-url';
import { createDatabase } from '../db/database';
import type { Database } from '../db/tables';
import { listAuditEvents } from '../ledger/ledger.repository';
import { reasonOf } from '../shared/error-causes';
import { DEFAULT_LIMIT, MAX_LIMIT, parseReadOptions, type RawReadOptions, type ReadRequest } from './audit-filters';
import { formatJsonLine, formatTable } from './audit-entry-format';
import { UsageError } from './usage-error';
import { readPublicKeyFile } from './checkpoint-key-file';
import { NatsUnavailableError, readLastCheckpointFile, verifyLedger, type CheckpointSource } from './verify-ledger';
import { rotateCheckpointKey } from './rotate-checkpoint-key';
import { CheckpointSeriesRefusal } from '../ledger/checkpoint-series';
import { checkpointStateFile } from '../ledger/checkpoint-state';
import { verifyTenantFiles, verifyTenantInDatabase } from './verify-tenant';
import { runWitness, WitnessFetchError } from './witness';

/**
 * service-fs: the operator's read-only view of the WORM audit ledger.
 *
 * Exit codes: 0 success, 1 `verify` found a defect, 2 bad usage or configuration,
 * 3 the database (or, for verify, NATS) cannot be reached or holds no ledger, 4 any other failure.
 */
export const EXIT = { ok: 0, chainBroken: 1, usage: 2, databaseUnavailable: 3, failure: 4 } as const;

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

type Env = Record<string, string | undefined>;

const GENERAL_HELP = `Usage: service-fs <command> [options]

Read and verify the append-only, hash-chained audit ledger.

Commands:
  read           print ledger entries matching filters
  verify         check every link and hash, and the ledger against its signed checkpoints
  verify-tenant  a tenant's offline check of its entries and proofs (files only, no database)
  witness        follow the checkpoint series over the API and keep a log tenants can check against
  rotate-checkpoint-key
                 hand the checkpoint series over to a new signing key (on the worker's host)

Global options:
  --database-url URL   database to read (default: DATABASE_URL, else
                       postgres://vm_tenant_app@127.0.0.1:5432/vm_tenant)
  -h, --help           show help; "service-fs <command> --help" for a command

Exit codes: 0 ok, 1 verify found a defect, 2 bad usage, 3 database or NATS unavailable, 4 other error.
`;

const READ_HELP = `Usage: service-fs read [options]

Prints ledger entries in seq order, one JSON object per line by default.

Options:
  --filter KEY=VALUE   equality filter, repeatable; KEY is tenant-id, vm-id or event-type
  --event-type TYPE    same as --filter event-type=TYPE
  --since TIME         entries that occurred at or after TIME (ISO 8601: 2026-06-14 or
                       2026-06-14T09:30:00Z; a time needs Z or an offset)
  --until TIME         entries that occurred before TIME (exclusive)
  --limit N            at most N entries, 1-${MAX_LIMIT} (default ${DEFAULT_LIMIT})
  --order asc|desc     by seq, oldest first (asc, default) or newest first (desc)
  --format json|table  JSON Lines with every field (default) or a table for reading
  --database-url URL   database to read (default: DATABASE_URL)

Example:
  service-fs read --filter tenant-id=acme-corp --event-type TENANT_CREATED --limit 1
`;

const VERIFY_TENANT_HELP = `Usage: service-fs verify-tenant --pin-key FILE --entries FILE... [--proof FILE...]
                                [--prior-proof FILE [--checkpoints FILE...]] [--witness FILE]

A tenant's own check, offline: no database, no other tenant's data. Checks that the entries (the
JSON of GET /v1/audit pages, saved as they came, all pages) form the tenant's chain from
tenant_seq 1, linked and recomputing, and that each proof (the JSON of GET /v1/audit/proof; keep
them over time) is signed by the key, proves the chain's head in the signed tree, and still
matches the entries. Prints "ok: ..." lines and exits 0, or one "bad: <defect>: ..." line per
finding and exits 1. Defects: gap, rewrite, truncation, forged_insert, fork, forged_checkpoint,
bad_proof, rollback.

With the proof saved last time (--prior-proof) it also checks that the service did not go back:
entries ending before the prior proof's head, or a proof of less or of an older checkpoint, are a
rollback. With the links since (--checkpoints: the pages of GET /v1/audit/checkpoints?cursor=<the
prior proof's checkpoint_id>), each newer checkpoint must follow the prior one link by link, each
signed by the series' key at that point (key rotations included): otherwise a fork (a split view).
With a witness's log (--witness), each checkpoint must be one the witness saw.

Options:
  --pin-key FILE         the key you pinned: the JSON of GET /.well-known/vm-tenant/ledger-checkpoint-key,
                         or a PEM (--checkpoint-key is the same option)
  --entries FILE         entries, repeatable (a page, an array, or JSON Lines)
  --proof FILE           a proof, repeatable
  --prior-proof FILE     the proof you saved last time
  --checkpoints FILE     links of the checkpoint series since the prior proof, repeatable
  --witness FILE         a witness's log (service-fs witness --log)
`;

const WITNESS_HELP = `Usage: service-fs witness --api URL --token-file FILE --pin-key FILE --log FILE

Run by someone the operator does not control, on a schedule (cron). Fetches the links of the
ledger's checkpoint series that follow the last one in the log (GET /v1/audit/checkpoints, any
token with audit:read), checks that each follows the one before it and is signed by the series'
key at that point, starting from the pinned key, and appends them to the log (JSON Lines). Publish
the log where tenants fetch it: they check their proofs against it with verify-tenant --witness.
Exits 0 when the log was brought up to date, 1 when the service shows a history that does not
extend the logged one (nothing is appended), 2 on bad usage, 3 when the API cannot be reached.

Options:
  --api URL              the API's base URL
  --token-file FILE      a file holding a bearer token with audit:read
  --pin-key FILE         the key to start from (JSON of the well-known key route, or a PEM)
  --log FILE             the witness's log; created when missing
`;

const VERIFY_HELP = `Usage: service-fs verify [--checkpoint-key FILE [--last-checkpoint FILE] | --chain-only] [--tenant ID] [--database-url URL]

Walks the chain from its first row and checks sequence, prev_hash links and each entry's hash,
then the checkpoint stream (NATS_URL, LEDGER_CHECKPOINT_STREAM): one series of checkpoints from
its genesis, each naming the one before it, signed by the key or keys it rotated to, every other
message named as foreign; and compares the ledger with every signed checkpoint: its head, its
tree of tenant chain heads, and its tree of every entry (every field). Prints one "ok: ..." line
per check and exits 0, or one "bad: <defect>: ..." line per finding and exits 1. Defects: gap,
rewrite, forged_insert, truncation, fork, forged_checkpoint, missing_checkpoints.

Options:
  --checkpoint-key FILE  the Ed25519 public key that signs checkpoints: a PEM file or the JSON
                         of GET /.well-known/vm-tenant/ledger-checkpoint-key (default: the
                         worker's LEDGER_CHECKPOINT_PUBLIC_KEY_FILE)
  --last-checkpoint FILE the signer's state file (its last checkpoint), which must be on the
                         stream and match the ledger (default: DATA_DIR/ledger-checkpoint-last.json
                         when it exists)
  --chain-only           check the chain alone, without NATS and the checkpoints
  --tenant ID            check one tenant's chain and its proof in the newest checkpoint, as
                         the tenant would with verify-tenant
  --database-url URL     database to read (default: DATABASE_URL)
`;

const ROTATE_HELP = `Usage: service-fs rotate-checkpoint-key

Run on the worker's host, with its DATA_DIR and NATS settings. Generates a new Ed25519 key (into
DATA_DIR/ledger-checkpoint-key.next.pem), publishes a key rotation as the checkpoint series' next
link (signed by the current key, naming and co-signed by the new one), records it in the signer's
state file and installs the new key and its public half in DATA_DIR. Workers that share DATA_DIR
sign with the new key from their next checkpoint; give the new public key to the API and to
whoever pins it. Running it again after an interruption completes the rotation. Exits 0 when
done, 1 when the signer's series cannot be continued (see docs/audit-ledger.md), 2 without a key
or series, 3 when NATS cannot be reached.
`;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  'database-url': { type: 'string' },
  filter: { type: 'string', multiple: true },
  'event-type': { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  order: { type: 'string' },
  format: { type: 'string' },
  'checkpoint-key': { type: 'string' },
  'chain-only': { type: 'boolean' },
  'last-checkpoint': { type: 'string' },
  tenant: { type: 'string' },
  entries: { type: 'string', multiple: true },
  proof: { type: 'string', multiple: true },
  'pin-key': { type: 'string' },
  'prior-proof': { type: 'string' },
  checkpoints: { type: 'string', multiple: true },
  witness: { type: 'string' },
  api: { type: 'string' },
  'token-file': { type: 'string' },
  log: { type: 'string' },
} as const;

const READ_ONLY_OPTIONS = ['filter', 'event-type', 'since', 'until', 'limit', 'order', 'format'] as const;
const VERIFY_ONLY_OPTIONS = ['checkpoint-key', 'chain-only', 'tenant', 'last-checkpoint'] as const;
const VERIFY_TENANT_OPTIONS = ['entries', 'proof', 'prior-proof', 'checkpoints', 'witness'] as const;
const WITNESS_OPTIONS = ['api', 'token-file', 'log'] as const;

type Command = 'read' | 'verify' | 'verify-tenant' | 'witness' | 'rotate-checkpoint-key';
const COMMANDS: readonly string[] = ['read', 'verify', 'verify-tenant', 'witness', 'rotate-checkpoint-key'];

interface Invocation {
  command: Command | undefined;
  help: boolean;
  databaseUrl: string | undefined;
  read: RawReadOptions;
  verify: { checkpointKey: string | undefined; chainOnly: boolean; tenant: string | undefined; lastCheckpoint: string | undefined };
  verifyTenant: { entries: string[]; proofs: string[]; priorProof: string | undefined; checkpoints: string[] | undefined; witness: string | undefined };
  witness: { api: string; tokenFile: string; log: string };
  /** --pin-key, or --checkpoint-key: the same option. */
  pinKey: string | undefined;
}

function parseInvocation(argv: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    // parseArgs reports unknown options and missing values as TypeErrors with ERR_PARSE_ARGS_* codes.
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) throw new UsageError((error as Error).message);
    throw error;
  }
  const { values, positionals } = parsed;
  const [command, ...extra] = positionals;
  if (command !== undefined && !COMMANDS.includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(extra[0])}`);
  if (command === 'verify') {
    const misplaced = READ_ONLY_OPTIONS.find((name) => values[name] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is an option of read, not verify`);
    if (values['chain-only'] === true && values['checkpoint-key'] !== undefined) throw new UsageError('--chain-only and --checkpoint-key exclude each other');
    if (values['chain-only'] === true && values.tenant !== undefined) throw new UsageError('--tenant needs the checkpoints: it excludes --chain-only');
    if (values['chain-only'] === true && values['last-checkpoint'] !== undefined) throw new UsageError('--last-checkpoint needs the checkpoints: it excludes --chain-only');
  }
  if (command === 'rotate-checkpoint-key') {
    const misplaced = Object.keys(values).find((name) => name !== 'help');
    if (misplaced) throw new UsageError(`--${misplaced} is not an option of rotate-checkpoint-key`);
  }
  if (values['pin-key'] !== undefined && values['checkpoint-key'] !== undefined) throw new UsageError('--pin-key and --checkpoint-key are the same option: give one');
  const pinKey = values['pin-key'] ?? values['checkpoint-key'];
  if (command !== 'verify-tenant') {
    const misplaced = VERIFY_TENANT_OPTIONS.find((name) => values[name] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is an option of verify-tenant`);
  }
  if (command !== 'witness') {
    const misplaced = WITNESS_OPTIONS.find((name) => values[name] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is an option of witness`);
    if (command !== 'verify-tenant' && values['pin-key'] !== undefined) throw new UsageError('--pin-key is an option of verify-tenant and witness');
  }
  if (command === 'verify-tenant') {
    const misplaced = [...READ_ONLY_OPTIONS, 'chain-only', 'tenant', 'database-url', 'last-checkpoint'].find((name) => values[name as keyof typeof values] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is not an option of verify-tenant`);
    if (pinKey === undefined) throw new UsageError('verify-tenant needs --pin-key');
    if (values.entries === undefined) throw new UsageError('verify-tenant needs --entries');
    if (values.checkpoints !== undefined && values['prior-proof'] === undefined) throw new UsageError('--checkpoints are checked against a prior proof: give --prior-proof');
  }
  if (command === 'witness') {
    const misplaced = [...READ_ONLY_OPTIONS, ...VERIFY_TENANT_OPTIONS, 'chain-only', 'tenant', 'database-url', 'last-checkpoint'].find((name) => values[name as keyof typeof values] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is not an option of witness`);
    const missing = [...WITNESS_OPTIONS].find((name) => values[name] === undefined) ?? (pinKey === undefined ? 'pin-key' : undefined);
    if (missing) throw new UsageError(`witness needs --${missing}`);
  }
  if (command === 'read') {
    const misplaced = VERIFY_ONLY_OPTIONS.find((name) => values[name] !== undefined);
    if (misplaced) throw new UsageError(`--${misplaced} is an option of verify, not read`);
  }
  return {
    command: command as Command | undefined,
    help: values.help === true,
    databaseUrl: values['database-url'],
    read: {
      filter: values.filter,
      'event-type': values['event-type'],
      since: values.since,
      until: values.until,
      limit: values.limit,
      order: values.order,
      format: values.format,
    },
    verify: { checkpointKey: values['checkpoint-key'], chainOnly: values['chain-only'] === true, tenant: values.tenant, lastCheckpoint: values['last-checkpoint'] },
    verifyTenant: { entries: values.entries ?? [], proofs: values.proof ?? [], priorProof: values['prior-proof'], checkpoints: values.checkpoints, witness: values.witness },
    witness: { api: values.api ?? '', tokenFile: values['token-file'] ?? '', log: values.log ?? '' },
    pinKey,
  };
}

/** `rotate-checkpoint-key`: files and NATS only, no database. */
async function rotate(env: Env, io: CliIo): Promise<number> {
  const config = loadConfig(env);
  try {
    const lines = await rotateCheckpointKey({
      dataDir: config.dataDir,
      natsUrl: config.natsUrl,
      nats: config.nats,
      stream: config.ledgerCheckpointStream,
      subjectPrefix: config.natsSubjectPrefix,
      publicKeyFile: config.ledgerCheckpointPublicKeyFile,
    });
    io.stdout(`${lines.join('\n')}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof CheckpointSeriesRefusal) {
      io.stdout(`bad: ${error.code}: ${error.message}\n`);
      return EXIT.chainBroken;
    }
    if (error instanceof NatsUnavailableError) {
      io.stderr(`service-fs: ${error.message}\n`);
      return EXIT.databaseUnavailable;
    }
    throw error;
  }
}

/** `witness`: files and the API only, no database. */
async function witness(invocation: Invocation, io: CliIo): Promise<number> {
  try {
    const verdict = await runWitness({ apiUrl: invocation.witness.api, tokenFile: invocation.witness.tokenFile, keyFile: invocation.pinKey!, logFile: invocation.witness.log });
    io.stdout(`${verdict.lines.join('\n')}\n`);
    return verdict.ok ? EXIT.ok : EXIT.chainBroken;
  } catch (error) {
    if (!(error instanceof WitnessFetchError)) throw error;
    io.stderr(`service-fs: ${error.message}\n`);
    return EXIT.databaseUnavailable;
  }
}

class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}

async function readEntries(db: Kysely<Database>, { query, format }: ReadRequest, io: CliIo): Promise<number> {
  const rows = await listAuditEvents(db, query);
  if (format === 'table') {
    io.stdout(`${formatTable(rows)}\n`);
  } else if (rows.length > 0) {
    io.stdout(`${rows.map(formatJsonLine).join('\n')}\n`);
  }
  if (rows.length === 0) io.stderr('service-fs: no matching entries\n');
  return EXIT.ok;
}

async function verifyEntries(db: Kysely<Database>, checkpoints: CheckpointSource | null, tenant: string | undefined, io: CliIo): Promise<number> {
  const outcome = tenant !== undefined && checkpoints !== null ? await verifyTenantInDatabase(db, tenant, checkpoints) : await verifyLedger(db, checkpoints);
  io.stdout(`${outcome.lines.join('\n')}\n`);
  return outcome.ok ? EXIT.ok : EXIT.chainBroken;
}

/** Runs one service-fs invocation and returns its exit code; never throws and always closes the pool. */
export async function runServiceFs(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  let readRequest: ReadRequest | undefined;
  let checkpoints: CheckpointSource | null = null;
  let tenant: string | undefined;
  let databaseUrl: string;
  try {
    const invocation = parseInvocation(argv);
    if (invocation.help) {
      const help = { read: READ_HELP, verify: VERIFY_HELP, 'verify-tenant': VERIFY_TENANT_HELP, witness: WITNESS_HELP, 'rotate-checkpoint-key': ROTATE_HELP } as const;
      io.stdout(invocation.command === undefined ? GENERAL_HELP : help[invocation.command]);
      return EXIT.ok;
    }
    if (invocation.command === undefined) throw new UsageError('missing command: read, verify, verify-tenant, witness or rotate-checkpoint-key');
    if (invocation.command === 'rotate-checkpoint-key') return await rotate(env, io);
    if (invocation.command === 'verify-tenant') {
      const { entries, proofs, priorProof, checkpoints: checkpointFiles, witness } = invocation.verifyTenant;
      const verdict = await verifyTenantFiles({ keyFile: invocation.pinKey!, entryFiles: entries, proofFiles: proofs, priorProofFile: priorProof, checkpointFiles, witnessFile: witness });
      io.stdout(`${verdict.lines.join('\n')}\n`);
      return verdict.ok ? EXIT.ok : EXIT.chainBroken;
    }
    if (invocation.command === 'witness') return await witness(invocation, io);
    // Check the flags before touching the database, so a typo never waits on a connection.
    if (invocation.command === 'read') readRequest = parseReadOptions(invocation.read);
    const override = invocation.databaseUrl === undefined ? {} : { DATABASE_URL: invocation.databaseUrl };
    const config = loadConfig({ ...env, ...override });
    databaseUrl = config.databaseUrl;
    tenant = invocation.verify.tenant;
    if (invocation.command === 'verify' && !invocation.verify.chainOnly) {
      const publicKey = await readPublicKeyFile(invocation.verify.checkpointKey ?? config.ledgerCheckpointPublicKeyFile);
      // The signer's own record of its last checkpoint, when verify runs where it is (or is given it).
      const defaultState = checkpointStateFile(config.dataDir);
      const stateFile = invocation.verify.lastCheckpoint ?? ((await access(defaultState).then(() => true, () => false)) ? defaultState : undefined);
      let lastCheckpoint = stateFile === undefined ? undefined : await readLastCheckpointFile(stateFile);
      if (lastCheckpoint && invocation.verify.lastCheckpoint === undefined && lastCheckpoint.stream !== config.ledgerCheckpointStream) {
        io.stderr(`service-fs: ${defaultState} is the signer's record for stream ${lastCheckpoint.stream}, not ${config.ledgerCheckpointStream}: not compared\n`);
        lastCheckpoint = undefined;
      }
      checkpoints = { natsUrl: config.natsUrl, nats: config.nats, stream: config.ledgerCheckpointStream, subjectPrefix: config.natsSubjectPrefix, publicKey, lastCheckpoint };
    }
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      io.stderr(`service-fs: ${error.message}\nRun "service-fs --help" for usage.\n`);
      return EXIT.usage;
    }
    io.stderr(`service-fs: ${reasonOf(error)}\n`);
    return EXIT.failure;
  }

  const db = createDatabase(databaseUrl, { max: 1, applicationName: 'service-fs' });
  try {
    try {
      await sql`select 1`.execute(db);
    } catch (error) {
      throw new DatabaseUnavailableError(`cannot connect to ${redactUrl(databaseUrl)}: ${reasonOf(error)}`);
    }
    return readRequest !== undefined ? await readEntries(db, readRequest, io) : await verifyEntries(db, checkpoints, tenant, io);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (error instanceof DatabaseUnavailableError || error instanceof NatsUnavailableError) {
      io.stderr(`service-fs: ${error.message}\n`);
      return EXIT.databaseUnavailable;
    }
    if (code === '42P01') {
      io.stderr(`service-fs: no audit ledger in ${redactUrl(databaseUrl)} (table audit_events is missing); run the migrations first\n`);
      return EXIT.databaseUnavailable;
    }
    if (code === '42501') {
      io.stderr(`service-fs: the database user may not read the ledger: ${reasonOf(error)}\n`);
      return EXIT.databaseUnavailable;
    }
    io.stderr(`service-fs: ${reasonOf(error)}\n`);
    return EXIT.failure;
  } finally {
    await db.destroy().catch(() => undefined);
  }
}

/** The process entry point used by bin/service-fs.js: the environment is handed to loadConfig here. */
export function main(): void {
  // `service-fs read | head` closes the pipe early; that is not an error worth a stack trace.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok);
    throw error;
  });
  const io: CliIo = { stdout: (text) => process.stdout.write(text), stderr: (text) => process.stderr.write(text) };
  void runServiceFs(process.argv.slice(2), process.env, io).then((code) => {
    process.exitCode = code;
  });
}
