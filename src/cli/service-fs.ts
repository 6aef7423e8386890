import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config/config';
import { reasonOf } from '../shared/error-causes';
import { readCommand } from './service-fs/read.command';
import { rotateCheckpointKeyCommand } from './service-fs/rotate-checkpoint-key.command';
import { EXIT, type CliIo, type Env, type RunContext } from './service-fs/run-context';
import { tenantStreamCommand } from './service-fs/tenant-stream.command';
import { verifyTenantCommand } from './service-fs/verify-tenant.command';
import { verifyCommand } from './service-fs/verify.command';
import { witnessCommand } from './service-fs/witness.command';
import { UsageError } from './usage-error';

export { EXIT, type CliIo } from './service-fs/run-context';

const USAGE_HINT = 'Run "service-fs --help" for usage.';

/**
 * service-fs: the operator's tool for the WORM audit ledger (read and verify it, rotate its
 * checkpoint key, give a tenant a stream of its own) and the tenant's and witness's tool for its
 * anchors (verify-tenant, witness).
 */
function buildProgram(run: RunContext): Command {
  const program = new Command('service-fs')
    .usage('<command> [options]')
    .description('Read and verify the append-only, hash-chained audit ledger and its signed checkpoints.')
    .option('--database-url <url>', 'database to read (default: DATABASE_URL, else postgres://vm_tenant_app@127.0.0.1:5432/vm_tenant)')
    .addHelpText('after', '\nExit codes: 0 ok, 1 a check found a defect, 2 bad usage, 3 database, NATS or API unavailable, 4 other error.\n')
    .configureOutput({
      writeOut: (text) => run.io.stdout(text),
      writeErr: (text) => run.io.stderr(text),
      outputError: (text, write) => write(`service-fs: ${text.replace(/^error: /, '')}${USAGE_HINT}\n`),
    })
    .exitOverride();
  for (const command of [
    readCommand(run),
    verifyCommand(run),
    verifyTenantCommand(run),
    witnessCommand(run),
    rotateCheckpointKeyCommand(run),
    tenantStreamCommand(run),
  ]) {
    command.exitOverride().configureOutput(program.configureOutput());
    program.addCommand(command);
  }
  return program;
}

/** Runs one service-fs invocation and returns its exit code; never throws. */
export async function runServiceFs(argv: readonly string[], env: Env, io: CliIo): Promise<number> {
  const run: RunContext = { env, io, exitCode: EXIT.ok };
  const program = buildProgram(run);
  try {
    if (argv.length === 0) throw new UsageError(`missing command: ${program.commands.map((c) => c.name()).join(', ')}`);
    await program.parseAsync([...argv], { from: 'user' });
    return run.exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help is an "error" to commander; it has printed it (and any other message) already.
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.help' ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof UsageError || error instanceof ConfigError) {
      io.stderr(`service-fs: ${error.message}\n${USAGE_HINT}\n`);
      return EXIT.usage;
    }
    io.stderr(`service-fs: ${reasonOf(error)}\n`);
    return EXIT.failure;
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
