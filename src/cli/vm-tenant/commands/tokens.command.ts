import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { CliError } from '../cli-errors';
import { contextOf, listRows, type ListFlags } from '../command-context';
import { intOption as int } from '../int-option';

const COLUMNS = ['token_id', 'scope', 'key_binding', 'parent_token_id', 'created_at', 'expires_at', 'revoked_at'] as const;

/** `--subject-pubkey` takes the key itself or `@file` (an `id_ed25519.pub` or a PEM file). */
async function publicKeyArgument(value: string): Promise<string> {
  if (!value.startsWith('@')) return value;
  const file = value.slice(1);
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (error) {
    throw new CliError(`cannot read the public key ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'pubkey_unreadable');
  }
}

export function tokensCommand(env: NodeJS.ProcessEnv): Command {
  const tokens = new Command('tokens').description("issue, list and revoke a tenant's tokens");
  tokens
    .command('issue')
    .argument('<tenant_id>')
    .description('issue a token (its secret is shown once)')
    .requiredOption('--subject-pubkey <key|@file>', 'Ed25519 public key of the holder ("ssh-ed25519 ...", PEM, raw base64) or @file')
    .requiredOption('--scope <scope>', 'service:tenant-admin, vm:write, vm:read or audit:read')
    .option('--expires-in <seconds>', 'lifetime in seconds', int)
    .option(
      '--bound',
      'bind the token to the key: it then works only on requests signed with the private key of --subject-pubkey (tokens issued by a bound token are bound anyway)',
    )
    .action(async (tenantId: string, flags: { subjectPubkey: string; scope: string; expiresIn?: number; bound?: boolean }, command: Command) => {
      const ctx = contextOf(command, env);
      const body = {
        subject_pubkey: await publicKeyArgument(flags.subjectPubkey),
        scope: flags.scope,
        expires_in_seconds: flags.expiresIn,
        key_binding: flags.bound ? 'required' : undefined,
      };
      ctx.printer().record(await (await ctx.client()).call('POST', `/v1/tenants/${encodeURIComponent(tenantId)}/tokens`, { body }));
    });
  tokens
    .command('list')
    .argument('<tenant_id>')
    .description("list a tenant's tokens (never their secrets)")
    .option('--limit <n>', 'page size (1-100)', int)
    .option('--cursor <cursor>', 'continue after this cursor')
    .option('--all', 'follow every page')
    .action(async (tenantId: string, flags: ListFlags, command: Command) => {
      const ctx = contextOf(command, env);
      const printer = ctx.printer();
      printer.rows(await listRows(await ctx.client(), printer, `/v1/tenants/${encodeURIComponent(tenantId)}/tokens`, flags), COLUMNS);
    });
  tokens
    .command('revoke')
    .argument('<tenant_id>')
    .argument('<token_id>')
    .description('revoke a token and every token issued under it')
    .action(async (tenantId: string, tokenId: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command, env);
      ctx.printer().record(await (await ctx.client()).call('DELETE', `/v1/tenants/${encodeURIComponent(tenantId)}/tokens/${encodeURIComponent(tokenId)}`));
    });
  return tokens;
}
