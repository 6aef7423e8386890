import { Command } from 'commander';
import { runWitness, WitnessFetchError } from '../witness';
import { EXIT, report, type RunContext } from './run-context';

const DESCRIPTION = `follow the checkpoint series over the API and keep a log tenants can check against

Run by someone the operator does not control, on a schedule (cron). Fetches the links of the
ledger's checkpoint series that follow the last one in the log (GET /v1/audit/checkpoints, any
token with audit:read), checks that each follows the one before it and is signed by the series'
key at that point, starting from the pinned key, and appends them to the log (JSON Lines). Publish
the log where tenants fetch it: they check their proofs against it with verify-tenant --witness.
Exits 0 when the log was brought up to date, 1 when the service shows a history that does not
extend the logged one (nothing is appended), 2 on bad usage, 3 when the API cannot be reached.`;

export function witnessCommand(run: RunContext): Command {
  return new Command('witness')
    .description(DESCRIPTION)
    .requiredOption('--api <url>', "the API's base URL")
    .requiredOption('--token-file <file>', 'a file holding a bearer token with audit:read')
    .requiredOption('--pin-key <file>', 'the key to start from (JSON of the well-known key route, or a PEM)')
    .requiredOption('--log <file>', "the witness's log; created when missing")
    .action(async (flags: { api: string; tokenFile: string; pinKey: string; log: string }) => {
      try {
        report(run, await runWitness({ apiUrl: flags.api, tokenFile: flags.tokenFile, keyFile: flags.pinKey, logFile: flags.log }));
      } catch (error) {
        if (!(error instanceof WitnessFetchError)) throw error;
        run.io.stderr(`service-fs: ${error.message}\n`);
        run.exitCode = EXIT.databaseUnavailable;
      }
    });
}
