import { createPublicKey } from 'node:crypto';
import { Command, Option } from 'commander';
import type { TenantAuditEntry } from '../../../ledger/audit-entry';
import type { TenantProof } from '../../../ledger/tenant-proof';
import { verifyTenantLedger } from '../../../ledger/tenant-verifier';
import { AUDIT_EVENT_TYPES } from '../../../shared/audit-event-types';
import { allPages } from '../api-client';
import { CliError, ProblemError } from '../cli-errors';
import { contextOf, listRows, type ListFlags } from '../command-context';
import { intOption as int } from '../int-option';

const COLUMNS = ['occurred_at', 'event_type', 'tenant_id', 'vm_id', 'tenant_seq', 'event_id'] as const;
const CHECKPOINT_KEY_PATH = '/.well-known/vm-tenant/ledger-checkpoint-key';

export function auditCommand(env: NodeJS.ProcessEnv): Command {
  const audit = new Command('audit').description('read and verify the audit ledger through the API');
  audit
    .command('read')
    .description("read ledger entries (a tenant token reads its tenant's own chain)")
    .option('--tenant <tenant_id>', 'entries of this tenant (platform admin)')
    .option('--vm <vm_id>', 'entries of this VM')
    .addOption(new Option('--event-type <type>', 'entries of this type').choices(AUDIT_EVENT_TYPES))
    .option('--since <time>', 'from this RFC 3339 time')
    .option('--until <time>', 'until this RFC 3339 time')
    .option('--limit <n>', 'page size (1-500)', int)
    .option('--cursor <cursor>', 'continue after this cursor')
    .option('--all', 'follow every page')
    .action(async (flags: ListFlags & { tenant?: string; vm?: string; eventType?: string; since?: string; until?: string }, command: Command) => {
      const ctx = contextOf(command, env);
      const printer = ctx.printer();
      const query = { tenant_id: flags.tenant, vm_id: flags.vm, event_type: flags.eventType, since: flags.since, until: flags.until };
      printer.rows(await listRows(await ctx.client(), printer, '/v1/audit', flags, query), COLUMNS);
    });
  audit
    .command('verify')
    .description("verify a tenant's chain and its inclusion in the newest signed checkpoint, offline from what the API gave")
    .option('--tenant <tenant_id>', 'the tenant to verify (required for the platform admin)')
    .option('--chain-only', 'check the chain alone when no signed checkpoint covers it yet')
    .action(async (flags: { tenant?: string; chainOnly?: boolean }, command: Command) => {
      const ctx = contextOf(command, env);
      const client = await ctx.client();
      const printer = ctx.printer();
      const key = await client.call<{ public_key_pem: string }>('GET', CHECKPOINT_KEY_PATH, { authenticated: false });
      const entries: TenantAuditEntry[] = [];
      for await (const page of allPages<TenantAuditEntry>(client, '/v1/audit', { tenant_id: flags.tenant, limit: 500 })) entries.push(...page);
      let proofs: TenantProof[] = [];
      try {
        proofs = [await client.call<TenantProof>('GET', '/v1/audit/proof', { query: { tenant_id: flags.tenant } })];
      } catch (error) {
        // not_anchored_yet: no checkpoint covers the tenant yet; dependency_unavailable: none can be read now.
        if (!(flags.chainOnly && error instanceof ProblemError && ['not_anchored_yet', 'dependency_unavailable'].includes(error.code))) throw error;
        printer.note(`no proof: ${error.title}: ${error.detail ?? ''} (code ${error.code}); checking the chain alone`);
      }
      const verdict = verifyTenantLedger(entries, proofs, createPublicKey(key.public_key_pem));
      for (const line of verdict.lines) printer.note(line);
      if (!verdict.ok) throw new CliError(`the ledger of ${flags.tenant ?? 'this tenant'} did not verify`, 'ledger_defects');
      printer.record({ ok: true, entries: entries.length, proofs: proofs.length });
    });
  return audit;
}
