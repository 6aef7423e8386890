import { access } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { loadConfig } from '../../config/config';
import { checkpointStateFile } from '../../ledger/checkpoint-state';
import { readPublicKeyFile } from '../checkpoint-key-file';
import { readLastCheckpointFile, verifyLedger, type CheckpointSource } from '../verify-ledger';
import { verifyTenantInDatabase } from '../verify-tenant';
import { report, withLedgerDatabase, type RunContext } from './run-context';

const DESCRIPTION = `check every link and hash, and the ledger against its signed checkpoints

Walks the chain from its first row and checks sequence, prev_hash links and each entry's hash,
then the checkpoint stream (NATS_URL, LEDGER_CHECKPOINT_STREAM): one series of checkpoints from
its genesis, each naming the one before it, signed by the key or keys it rotated to, every other
message named as foreign; and compares the ledger with every signed checkpoint: its head, its
tree of tenant chain heads, and its tree of every entry (every field). Prints one "ok: ..." line
per check and exits 0, or one "bad: <defect>: ..." line per finding and exits 1. Defects: gap,
rewrite, forged_insert, truncation, fork, forged_checkpoint, missing_checkpoints.`;

interface VerifyFlags {
  checkpointKey?: string;
  lastCheckpoint?: string;
  chainOnly?: boolean;
  tenant?: string;
}

export function verifyCommand(run: RunContext): Command {
  return new Command('verify')
    .description(DESCRIPTION)
    .addOption(
      new Option(
        '--checkpoint-key <file>',
        "the Ed25519 public key that signs checkpoints: a PEM file or the JSON of GET /.well-known/vm-tenant/ledger-checkpoint-key (default: the worker's LEDGER_CHECKPOINT_PUBLIC_KEY_FILE)",
      ).conflicts('chainOnly'),
    )
    .addOption(
      new Option(
        '--last-checkpoint <file>',
        "the signer's state file (its last checkpoint), which must be on the stream and match the ledger (default: DATA_DIR/ledger-checkpoint-last.json when it exists)",
      ).conflicts('chainOnly'),
    )
    .addOption(new Option('--chain-only', 'check the chain alone, without NATS and the checkpoints'))
    .addOption(
      new Option('--tenant <id>', "check one tenant's chain and its proof in the newest checkpoint, as the tenant would with verify-tenant").conflicts(
        'chainOnly',
      ),
    )
    .action(async (flags: VerifyFlags, command: Command) => {
      const { databaseUrl } = command.optsWithGlobals<{ databaseUrl?: string }>();
      const config = loadConfig({ ...run.env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) });
      const checkpoints = flags.chainOnly ? null : await checkpointSource(run, config, flags);
      await withLedgerDatabase(run, config.databaseUrl, async (db) => {
        report(
          run,
          flags.tenant !== undefined && checkpoints !== null
            ? await verifyTenantInDatabase(db, flags.tenant, checkpoints)
            : await verifyLedger(db, checkpoints),
        );
      });
    });
}

/** The checkpoint stream, the key, and the signer's own record of its last checkpoint when verify runs where it is (or is given it). */
async function checkpointSource(run: RunContext, config: ReturnType<typeof loadConfig>, flags: VerifyFlags): Promise<CheckpointSource> {
  const publicKey = await readPublicKeyFile(flags.checkpointKey ?? config.ledgerCheckpointPublicKeyFile);
  const defaultState = checkpointStateFile(config.dataDir);
  const stateFile =
    flags.lastCheckpoint ??
    ((await access(defaultState).then(
      () => true,
      () => false,
    ))
      ? defaultState
      : undefined);
  let lastCheckpoint = stateFile === undefined ? undefined : await readLastCheckpointFile(stateFile);
  if (lastCheckpoint && flags.lastCheckpoint === undefined && lastCheckpoint.stream !== config.ledgerCheckpointStream) {
    run.io.stderr(
      `service-fs: ${defaultState} is the signer's record for stream ${lastCheckpoint.stream}, not ${config.ledgerCheckpointStream}: not compared\n`,
    );
    lastCheckpoint = undefined;
  }
  return {
    natsUrl: config.natsUrl,
    nats: config.nats,
    stream: config.ledgerCheckpointStream,
    subjectPrefix: config.natsSubjectPrefix,
    publicKey,
    lastCheckpoint,
  };
}
