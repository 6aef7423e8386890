import { Command, Option } from 'commander';
import { verifyTenantFiles } from '../verify-tenant';
import { report, type RunContext } from './run-context';

const collect = (value: string, previous: string[] = []) => [...previous, value];

const DESCRIPTION = `a tenant's offline check of its entries and proofs (files only, no database)

Checks that the entries (the JSON of GET /v1/audit pages, saved as they came, all pages) form
the tenant's chain from tenant_seq 1, linked and recomputing, and that each proof (the JSON of
GET /v1/audit/proof; keep them over time) is signed by the key, proves the chain's head in the
signed tree, and still matches the entries. Prints "ok: ..." lines and exits 0, or one
"bad: <defect>: ..." line per finding and exits 1. Defects: gap, rewrite, truncation,
forged_insert, fork, forged_checkpoint, bad_proof, rollback.

With the proof saved last time (--prior-proof) it also checks that the service did not go back:
entries ending before the prior proof's head, or a proof of less or of an older checkpoint, are a
rollback. With the links since (--checkpoints: the pages of GET /v1/audit/checkpoints?cursor=<the
prior proof's checkpoint_id>), each newer checkpoint must follow the prior one link by link, each
signed by the series' key at that point (key rotations included): otherwise a fork (a split view).
With a witness's log (--witness), each checkpoint must be one the witness saw.`;

export function verifyTenantCommand(run: RunContext): Command {
  return new Command('verify-tenant')
    .description(DESCRIPTION)
    .addOption(
      new Option('--pin-key <file>', 'the key you pinned: the JSON of GET /.well-known/vm-tenant/ledger-checkpoint-key, or a PEM').conflicts('checkpointKey'),
    )
    .addOption(new Option('--checkpoint-key <file>', 'the same as --pin-key').hideHelp())
    .requiredOption('--entries <file>', 'entries, repeatable (a page, an array, or JSON Lines)', collect)
    .option('--proof <file>', 'a proof, repeatable', collect)
    .option('--prior-proof <file>', 'the proof you saved last time')
    .option(
      '--checkpoints <file>',
      'links of the checkpoint series (since the prior proof, or from a checkpoint of the pinned key to follow its rotations), repeatable',
      collect,
    )
    .option('--witness <file>', "a witness's log (service-fs witness --log)")
    .action(
      async (
        flags: { pinKey?: string; checkpointKey?: string; entries: string[]; proof?: string[]; priorProof?: string; checkpoints?: string[]; witness?: string },
        command: Command,
      ) => {
        const keyFile = flags.pinKey ?? flags.checkpointKey;
        if (keyFile === undefined) command.error("error: required option '--pin-key <file>' not specified");
        report(
          run,
          await verifyTenantFiles({
            keyFile,
            entryFiles: flags.entries,
            proofFiles: flags.proof ?? [],
            priorProofFile: flags.priorProof,
            checkpointFiles: flags.checkpoints,
            witnessFile: flags.witness,
          }),
        );
      },
    );
}
