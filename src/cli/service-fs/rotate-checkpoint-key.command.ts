import { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { CheckpointSeriesRefusal } from '../../ledger/checkpoint-series';
import { rotateCheckpointKey } from '../rotate-checkpoint-key';
import { NatsUnavailableError } from '../verify-ledger';
import { EXIT, type RunContext } from './run-context';

const DESCRIPTION = `hand the checkpoint series over to a new signing key (on the worker's host)

Run on the worker's host, with its DATA_DIR and NATS settings. Generates a new Ed25519 key (into
DATA_DIR/ledger-checkpoint-key.next.pem), publishes a key rotation as the checkpoint series' next
link (signed by the current key, naming and co-signed by the new one), records it in the signer's
state file and installs the new key and its public half in DATA_DIR. Workers that share DATA_DIR
sign with the new key from their next checkpoint; give the new public key to the API and to
whoever pins it. Running it again after an interruption completes the rotation. Exits 0 when
done, 1 when the signer's series cannot be continued (see docs/audit-ledger.md), 2 without a key
or series, 3 when NATS cannot be reached.`;

export function rotateCheckpointKeyCommand(run: RunContext): Command {
  return new Command('rotate-checkpoint-key').description(DESCRIPTION).action(async () => {
    const config = loadConfig(run.env);
    try {
      const lines = await rotateCheckpointKey({
        dataDir: config.dataDir,
        natsUrl: config.natsUrl,
        nats: config.nats,
        stream: config.ledgerCheckpointStream,
        subjectPrefix: config.natsSubjectPrefix,
        publicKeyFile: config.ledgerCheckpointPublicKeyFile,
      });
      run.io.stdout(`${lines.join('\n')}\n`);
      run.exitCode = EXIT.ok;
    } catch (error) {
      if (error instanceof CheckpointSeriesRefusal) {
        run.io.stdout(`bad: ${error.code}: ${error.message}\n`);
        run.exitCode = EXIT.chainBroken;
      } else if (error instanceof NatsUnavailableError) {
        run.io.stderr(`service-fs: ${error.message}\n`);
        run.exitCode = EXIT.databaseUnavailable;
      } else throw error;
    }
  });
}
