import { Command, Option } from 'commander';
import { VM_STATUSES } from '../../../shared/vm';
import { contextOf, listRows, type ListFlags } from '../command-context';
import { intOption as int } from '../int-option';
import { waitForVm } from '../wait-for-vm';

const COLUMNS = ['vm_id', 'name', 'status', 'vcpus', 'memory_mb', 'storage_gb', 'image', 'created_at'] as const;
const DEFAULT_WAIT_SECONDS = 900;

interface WaitFlags {
  wait?: boolean;
  timeout: number;
}

const waitOptions = (command: Command): Command =>
  command.option('--wait', 'show progress until the VM is done').option('--timeout <seconds>', 'give up waiting after this long', int, DEFAULT_WAIT_SECONDS);

export function vmsCommand(env: NodeJS.ProcessEnv): Command {
  const vms = new Command('vms').description("spawn, list, read and destroy the tenant's VMs");
  waitOptions(
    vms
      .command('spawn')
      .description('spawn a VM (answers at once with status provisioning; --wait until running)')
      .requiredOption('--vcpus <n>', 'virtual CPUs', int)
      .requiredOption('--memory-mb <n>', 'memory in MB', int)
      .requiredOption('--storage-gb <n>', 'storage in GB', int)
      .requiredOption('--image <image>', 'image reference')
      .option('--name <name>', 'a name for the VM')
      .option('--idempotency-key <key>', 'repeat the command safely with the same key'),
  ).action(
    async (
      flags: WaitFlags & { vcpus: number; memoryMb: number; storageGb: number; image: string; name?: string; idempotencyKey?: string },
      command: Command,
    ) => {
      const ctx = contextOf(command, env);
      const client = await ctx.client();
      const printer = ctx.printer();
      const body = { vcpus: flags.vcpus, memory_mb: flags.memoryMb, storage_gb: flags.storageGb, image: flags.image, name: flags.name };
      const headers = flags.idempotencyKey ? { 'Idempotency-Key': flags.idempotencyKey } : undefined;
      const vm = await client.call<{ vm_id: string }>('POST', '/v1/vms', { body, headers });
      printer.record(flags.wait ? await waitForVm(client, printer, vm.vm_id, { until: 'running', timeoutMs: flags.timeout * 1000 }) : vm);
    },
  );
  vms
    .command('list')
    .description('list VMs')
    .addOption(new Option('--status <status>', 'only VMs in this status').choices(VM_STATUSES))
    .option('--tenant <tenant_id>', "a tenant's VMs (platform admin only)")
    .option('--limit <n>', 'page size (1-100)', int)
    .option('--cursor <cursor>', 'continue after this cursor')
    .option('--all', 'follow every page')
    .action(async (flags: ListFlags & { status?: string; tenant?: string }, command: Command) => {
      const ctx = contextOf(command, env);
      const printer = ctx.printer();
      printer.rows(await listRows(await ctx.client(), printer, '/v1/vms', flags, { status: flags.status, tenant_id: flags.tenant }), COLUMNS);
    });
  vms
    .command('get')
    .argument('<vm_id>')
    .description('read a VM')
    .option('--tenant <tenant_id>', 'in this tenant (platform admin only)')
    .action(async (vmId: string, flags: { tenant?: string }, command: Command) => {
      const ctx = contextOf(command, env);
      ctx.printer().record(await (await ctx.client()).call('GET', `/v1/vms/${encodeURIComponent(vmId)}`, { query: { tenant_id: flags.tenant } }));
    });
  waitOptions(
    vms
      .command('destroy')
      .argument('<vm_id>')
      .description('destroy a VM (answers at once with status destroying; --wait until destroyed)')
      .option('--idempotency-key <key>', 'repeat the command safely with the same key'),
  ).action(async (vmId: string, flags: WaitFlags & { idempotencyKey?: string }, command: Command) => {
    const ctx = contextOf(command, env);
    const client = await ctx.client();
    const printer = ctx.printer();
    const headers = flags.idempotencyKey ? { 'Idempotency-Key': flags.idempotencyKey } : undefined;
    const vm = await client.call<{ vm_id: string }>('DELETE', `/v1/vms/${encodeURIComponent(vmId)}`, { headers });
    printer.record(flags.wait ? await waitForVm(client, printer, vm.vm_id, { until: 'destroyed', timeoutMs: flags.timeout * 1000 }) : vm);
  });
  return vms;
}
