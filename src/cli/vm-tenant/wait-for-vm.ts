import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiClient } from './api-client';
import { CliError, ProblemError } from './cli-errors';
import type { Printer } from './output';

interface VmState {
  vm_id: string;
  status: string;
  failure_reason?: string | null;
}

export interface WaitOptions {
  until: 'running' | 'destroyed';
  timeoutMs: number;
  pollMs?: number;
  query?: Record<string, string | undefined>;
}

/**
 * Polls the VM and reports each status it passes through (on stderr) until it reaches `until`.
 * A VM that fails is an error; a VM that disappears while being destroyed counts as destroyed.
 */
export async function waitForVm(client: ApiClient, printer: Printer, vmId: string, options: WaitOptions): Promise<VmState> {
  const deadline = Date.now() + options.timeoutMs;
  let last: string | null = null;
  for (;;) {
    let vm: VmState;
    try {
      vm = await client.call<VmState>('GET', `/v1/vms/${encodeURIComponent(vmId)}`, { query: options.query });
    } catch (error) {
      if (options.until === 'destroyed' && error instanceof ProblemError && error.code === 'vm_not_found') return { vm_id: vmId, status: 'destroyed' };
      throw error;
    }
    if (vm.status !== last) {
      printer.note(`vm ${vmId}: ${vm.status}${vm.failure_reason ? ` (${vm.failure_reason})` : ''}`);
      last = vm.status;
    }
    if (vm.status === options.until) return vm;
    if (vm.status === 'failed') throw new CliError(`vm ${vmId} failed${vm.failure_reason ? `: ${vm.failure_reason}` : ''}`, 'vm_failed');
    if (options.until === 'running' && vm.status === 'destroyed') throw new CliError(`vm ${vmId} was destroyed before it ran`, 'vm_destroyed');
    if (Date.now() >= deadline) throw new CliError(`vm ${vmId} is still ${vm.status} after ${Math.round(options.timeoutMs / 1000)} s`, 'wait_timeout');
    await sleep(options.pollMs ?? 500);
  }
}
