import { Command, CommanderError, Option } from 'commander';
import { CliError, ProblemError } from './cli-errors';
import { auditCommand } from './commands/audit.command';
import { tenantsCommand } from './commands/tenants.command';
import { tokensCommand } from './commands/tokens.command';
import { vmsCommand } from './commands/vms.command';

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

export function buildProgram(env: NodeJS.ProcessEnv): Command {
  const program = new Command('vm-tenant')
    .description('The vm-tenant API from the command line.')
    .option('--url <url>', 'API base URL (default: $VM_TENANT_URL, then the profile)')
    .option(
      '--token <token>',
      'bearer token (default: $VM_TENANT_TOKEN, then the profile); visible to other local users in the process list, prefer the environment or the profile',
    )
    .option('--profile <file>', 'profile file {"url","token","key"}, mode 0600 (default: $VM_TENANT_PROFILE, then ~/.config/vm-tenant/profile.json)')
    .option(
      '--key <file>',
      'Ed25519 private key (OpenSSH ~/.ssh/id_ed25519 or PEM PKCS#8) to sign requests with, as key-bound tokens need (default: $VM_TENANT_KEY, then the profile\'s "key")',
    )
    .addOption(new Option('--output <format>', 'output format').choices(['table', 'json']).default('table'))
    .showHelpAfterError()
    .exitOverride();
  for (const command of [tenantsCommand(env), tokensCommand(env), vmsCommand(env), auditCommand(env)]) {
    program.addCommand(command);
    for (const sub of command.commands) sub.exitOverride();
    command.exitOverride();
  }
  return program;
}

/** Runs the CLI; answers the exit code: 0, 1 for a failed command (the problem printed), 2 for bad usage. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const program = buildProgram(env);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are "errors" to commander; it has already printed them.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.help' || error.code === 'commander.version') return 0;
      return EXIT_USAGE;
    }
    if (error instanceof ProblemError) {
      process.stderr.write(`error: ${error.title}\n`);
      if (error.detail) process.stderr.write(`detail: ${error.detail}\n`);
      process.stderr.write(`code: ${error.code} (HTTP ${error.status})\n`);
      const fieldErrors = error.problem.errors;
      if (Array.isArray(fieldErrors))
        for (const e of fieldErrors as Array<{ field?: string; message?: string }>) process.stderr.write(`  ${e.field ?? '?'}: ${e.message ?? ''}\n`);
      return EXIT_FAILURE;
    }
    if (error instanceof CliError) {
      process.stderr.write(`error: ${error.message}\ncode: ${error.code}\n`);
      return EXIT_FAILURE;
    }
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\ncode: internal_error\n`);
    return EXIT_FAILURE;
  }
}
