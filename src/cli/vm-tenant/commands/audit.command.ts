import { createPublicKey } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import type { TenantAuditEntry } from '../../../ledger/audit-entry';
import type { TenantProof } from '../../../ledger/tenant-proof';
import { verifyTenantHistory } from '../../../ledger/tenant-history-check';
import { readPublicKeyFile } from '../../checkpoint-key-file';
import { flatten, readJsonValues } from '../../json-values';
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
    .option('--pin-key <file>', 'the checkpoint key you pinned (JSON of the well-known key route, or a PEM); default: the key the API serves now')
    .option('--state-dir <dir>', 'keep the newest proof here and check the next one against it (rollback, split views)')
    .option('--witness <file>', "a witness's log of the checkpoint series (service-fs witness)")
    .action(async (flags: { tenant?: string; chainOnly?: boolean; pinKey?: string; stateDir?: string; witness?: string }, command: Command) => {
      const ctx = contextOf(command, env);
      const client = await ctx.client();
      const printer = ctx.printer();
      const pinned = flags.pinKey
        ? await readPublicKeyFile(flags.pinKey)
        : createPublicKey((await client.call<{ public_key_pem: string }>('GET', CHECKPOINT_KEY_PATH, { authenticated: false })).public_key_pem);
      if (!flags.pinKey) printer.note('warning: the key was fetched from the same API: this proves consistency, not authenticity (pin it with --pin-key)');
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
      const priorFile = flags.stateDir === undefined ? undefined : path.join(flags.stateDir, `prior-proof-${flags.tenant ?? 'own'}.json`);
      const prior = priorFile === undefined ? undefined : await readPriorProof(priorFile);
      const links: unknown[] = [];
      try {
        for (let cursor: string | null = prior?.checkpoint_id ?? null; cursor !== null;) {
          const page: { items: unknown[]; next_cursor: string | null } = await client.call('GET', '/v1/audit/checkpoints', { query: { cursor, limit: 1000 } });
          links.push(...page.items);
          cursor = page.next_cursor;
        }
      } catch (error) {
        // The service does not know the checkpoint it showed before: no path leads from it (a fork or a reset).
        if (!(error instanceof ProblemError && error.code === 'checkpoint_not_found')) throw error;
        printer.note(`the service does not know the checkpoint of the saved proof (${prior!.checkpoint_id})`);
      }
      const witness = flags.witness === undefined ? undefined : flatten(await readJsonValues(flags.witness));
      const verdict = verifyTenantHistory({ pinned, entries, proofs, prior, links: prior ? links : undefined, witness });
      for (const line of verdict.lines) printer.note(line);
      if (!verdict.ok) throw new CliError(`the ledger of ${flags.tenant ?? 'this tenant'} did not verify`, 'ledger_defects');
      // Only a proof that verified becomes the next run's baseline.
      if (priorFile !== undefined && proofs.length > 0) await writeFileAtomically(priorFile, `${JSON.stringify(proofs[0])}\n`);
      printer.record({ ok: true, entries: entries.length, proofs: proofs.length, prior: prior !== undefined });
    });
  return audit;
}

/** The proof a previous run kept; none on the first run. */
async function readPriorProof(file: string): Promise<TenantProof | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, 'state_unreadable');
  }
  try {
    return JSON.parse(text) as TenantProof;
  } catch {
    throw new CliError(`${file} is not a saved proof: remove it only if you know why it changed`, 'state_unreadable');
  }
}

async function writeFileAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}
