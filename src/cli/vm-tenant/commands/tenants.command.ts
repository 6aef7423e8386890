import { Command } from 'commander';
import { contextOf, listRows, type ListFlags } from '../command-context';
import { intOption as int } from '../int-option';

const COLUMNS = ['tenant_id', 'display_name', 'max_vms', 'storage_quota_gb', 'api_rate_limit_rpm', 'created_at'] as const;

interface QuotaFlags {
  maxVms?: number;
  storageQuotaGb?: number;
  apiRateLimitRpm?: number;
}

const quotaBody = (flags: QuotaFlags) => ({ max_vms: flags.maxVms, storage_quota_gb: flags.storageQuotaGb, api_rate_limit_rpm: flags.apiRateLimitRpm });

export function tenantsCommand(env: NodeJS.ProcessEnv): Command {
  const tenants = new Command('tenants').description('register, read, change and delete tenants (platform admin)');
  tenants
    .command('create')
    .description('register a tenant')
    .argument('<tenant_id>', '3-63 characters [a-z0-9-], starting with a letter')
    .requiredOption('--display-name <name>', 'human-readable name')
    .requiredOption('--max-vms <n>', 'VM quota', int)
    .requiredOption('--storage-quota-gb <n>', 'storage quota in GB', int)
    .requiredOption('--api-rate-limit-rpm <n>', 'requests per minute', int)
    .action(async (tenantId: string, flags: QuotaFlags & { displayName: string }, command: Command) => {
      const ctx = contextOf(command, env);
      const body = { tenant_id: tenantId, display_name: flags.displayName, ...quotaBody(flags) };
      ctx.printer().record(await (await ctx.client()).call('POST', '/v1/tenants', { body }));
    });
  tenants
    .command('get')
    .argument('<tenant_id>')
    .description('read a tenant')
    .action(async (tenantId: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command, env);
      ctx.printer().record(await (await ctx.client()).call('GET', `/v1/tenants/${encodeURIComponent(tenantId)}`));
    });
  tenants
    .command('list')
    .description('list tenants')
    .option('--limit <n>', 'page size (1-100)', int)
    .option('--cursor <cursor>', 'continue after this cursor')
    .option('--all', 'follow every page')
    .action(async (flags: ListFlags, command: Command) => {
      const ctx = contextOf(command, env);
      const printer = ctx.printer();
      printer.rows(await listRows(await ctx.client(), printer, '/v1/tenants', flags), COLUMNS);
    });
  tenants
    .command('update')
    .argument('<tenant_id>')
    .description("change a tenant's quota (answers once its workflow holds it)")
    .option('--max-vms <n>', 'VM quota', int)
    .option('--storage-quota-gb <n>', 'storage quota in GB', int)
    .option('--api-rate-limit-rpm <n>', 'requests per minute', int)
    .action(async (tenantId: string, flags: QuotaFlags, command: Command) => {
      const ctx = contextOf(command, env);
      ctx.printer().record(await (await ctx.client()).call('PATCH', `/v1/tenants/${encodeURIComponent(tenantId)}`, { body: quotaBody(flags) }));
    });
  tenants
    .command('delete')
    .argument('<tenant_id>')
    .description('delete a tenant (refused while it has VMs)')
    .action(async (tenantId: string, _flags: unknown, command: Command) => {
      const ctx = contextOf(command, env);
      ctx.printer().record(await (await ctx.client()).call('DELETE', `/v1/tenants/${encodeURIComponent(tenantId)}`));
    });
  return tenants;
}
