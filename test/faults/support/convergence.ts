/**
 * The checks every fault test ends with, after the fault is over: the system converged, and
 * nothing was lost, doubled or left behind. Each check compares two independent records of the
 * same facts (what clients were told, Postgres, the fleet simulator, the tenant workflow's usage,
 * the ledger, the NATS stream), and reports every mismatch in one list.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type StoredMsg } from 'nats';
import { verifyChain } from '../../../src/ledger/chain-verifier';
import { tenantWorkflowId } from '../../../src/shared/tenant-id';
import { usageQuery } from '../../../src/shared/tenant-workflow.messages';
import { fleetStats, fleetVms } from '../../../src/fleet-simulator/sim-client';
import type { PrivateStack } from '../../helpers/private-stack';
import type { ClientRequest } from './burst';

/** A row `requested` is a decision still owed (the admission resolver's); `rejected` is a refusal, final. */
const TERMINAL = new Set(['running', 'failed', 'destroyed', 'rejected']);
/** The statuses that count against the quota (docs/admission-protocol.md). */
const HOLDING_QUOTA = new Set(['provisioning', 'running', 'destroying']);

/**
 * The ledger steps a VM must hold exactly once, by its final status (anything else must be absent).
 * The admission steps are counted apart, by attempt (see admissionSteps).
 */
const EXPECTED_STEPS: Record<string, { once: string[]; optional?: string[] }> = {
  running: { once: ['VM_RUNNING'] },
  // A destroy that arrives while the VM boots cancels the boot: it may never have run.
  destroyed: { once: ['VM_DESTROY_REQUESTED', 'VM_DESTROYED'], optional: ['VM_RUNNING'] },
  failed: { once: ['VM_FAILED'], optional: ['VM_DESTROY_REQUESTED'] },
  rejected: { once: [] },
};

/**
 * Each admission attempt of a VM records its request once (VM_SPAWN_REQUESTED); every attempt but
 * a last one that was admitted (or is still undecided, or was failed as admission_lost after a lost
 * run's boot confirmed it) was refused, and records that refusal once (VM_SPAWN_REJECTED, by the API,
 * the resolver or the workflow's abandonment, whichever moved the row). A refused request asked again
 * under its Idempotency-Key is the next attempt of the same VM.
 */
function admissionSteps(vm: { status: string; admission_attempt: number }): { requested: number; rejected: number } {
  return { requested: vm.admission_attempt, rejected: vm.status === 'rejected' ? vm.admission_attempt : vm.admission_attempt - 1 };
}

/** The answers of a spawn the tenant workflow refused: its row must be refused too. */
const REFUSAL_CODES = new Set(['quota_exceeded', 'in_flight_limit']);

export interface ConvergenceReport {
  /** The VMs: every row but the refused requests' (`rejected`, counted apart; they never were VMs). */
  vms: number;
  /** Spawn requests the tenant workflow refused, whose rows are `rejected`. */
  rejected: number;
  /** Every row, by status (`rejected` included). */
  byStatus: Record<string, number>;
  ledgerEvents: number;
  streamMessages: number;
}

/** Reads every message of the stream by sequence (the stream is small in these tests). */
async function readStream(stack: PrivateStack): Promise<{ eventId: string; msgId: string | undefined }[]> {
  const nc = await connect({ servers: stack.natsUrl, timeout: 3_000, reconnect: false });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(stack.natsStream);
    const out: { eventId: string; msgId: string | undefined }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const msg: StoredMsg = await jsm.streams.getMessage(stack.natsStream, { seq });
      const body = msg.json<{ event_id: string }>();
      out.push({ eventId: body.event_id, msgId: msg.header?.get('Nats-Msg-Id') || undefined });
    }
    return out;
  } finally {
    await nc.close();
  }
}

/** One pass of every check; returns the mismatches (empty when converged) and a summary. */
export async function convergenceProblems(
  stack: PrivateStack,
  tenantIds: readonly string[],
  requests: readonly ClientRequest[],
): Promise<{ problems: string[]; report: ConvergenceReport }> {
  const problems: string[] = [];
  const vms = await stack.db
    .selectFrom('vms')
    .select(['vm_id', 'tenant_id', 'status', 'storage_gb', 'failure_reason', 'admission_attempt'])
    .where('tenant_id', 'in', [...tenantIds])
    .execute();
  const byId = new Map(vms.map((vm) => [vm.vm_id, vm]));
  const byStatus: Record<string, number> = {};
  for (const vm of vms) byStatus[vm.status] = (byStatus[vm.status] ?? 0) + 1;

  // 1. Every VM reached a final status.
  for (const vm of vms) if (!TERMINAL.has(vm.status)) problems.push(`VM ${vm.vm_id} is still ${vm.status}`);

  // 2. Clients and Postgres agree: every accepted spawn exists and was never refused, every spawn
  // refused by the workflow holds no quota, every VM was asked for, every accepted destroy happened.
  const askedFor = new Set(requests.filter((r) => r.kind === 'spawn').map((r) => r.vmId));
  for (const r of requests) {
    if (r.kind === 'spawn' && r.final === 202) {
      const status = byId.get(r.vmId)?.status;
      if (status === undefined) problems.push(`spawn ${r.key} was accepted (202) but VM ${r.vmId} is not in Postgres`);
      else if (status === 'rejected') problems.push(`spawn ${r.key} was accepted (202) but VM ${r.vmId} is rejected`);
    }
    if (r.kind === 'spawn' && r.final === 429 && REFUSAL_CODES.has(r.finalBody?.code)) {
      const vm = byId.get(r.vmId);
      // Refused by its own update: rejected with the reason. A run rebuilt from Postgres that held the
      // request pending and could no longer fit it abandons it: rejected as admission_lost if that
      // landed before the API's refusal, or failed as admission_lost if the lost run's boot had confirmed it.
      const refused =
        vm?.failure_reason === 'admission_lost'
          ? vm.status === 'rejected' || vm.status === 'failed'
          : vm?.status === 'rejected' && vm.failure_reason === r.finalBody.code;
      if (!refused)
        problems.push(
          `spawn ${r.key} was refused (429 ${r.finalBody.code}) but VM ${r.vmId} is ${vm ? `${vm.status} (${vm.failure_reason ?? 'no reason'})` : 'missing'}`,
        );
    }
    if (r.kind === 'destroy' && r.final === 202) {
      const status = byId.get(r.vmId)?.status;
      if (status !== 'destroyed' && status !== 'failed') problems.push(`destroy ${r.key} was accepted (202) but VM ${r.vmId} is ${status ?? 'missing'}`);
    }
  }
  for (const vm of vms) if (!askedFor.has(vm.vm_id)) problems.push(`VM ${vm.vm_id} is in Postgres but no client asked for it`);

  // 3. The fleet holds exactly Postgres's VMs, in the same status, each created once.
  const stats = await fleetStats(stack.fleetUrl);
  for (const tenantId of tenantIds) {
    const items = await fleetVms(stack.fleetUrl, tenantId);
    const fleetIds = new Set(items.map((vm) => vm.vm_id));
    for (const vm of items) {
      const ours = byId.get(vm.vm_id);
      if (!ours) problems.push(`fleet holds VM ${vm.vm_id} (${vm.status}) that Postgres does not (orphan)`);
      // A failed VM is destroyed at the fleet, in case it held a half-booted one.
      else if (ours.status !== vm.status && !(ours.status === 'failed' && vm.status === 'destroyed'))
        problems.push(`VM ${vm.vm_id} is ${ours.status} in Postgres but ${vm.status} at the fleet`);
    }
    const ourVms = vms.filter((vm) => vm.tenant_id === tenantId);
    for (const vm of ourVms) {
      // A VM the fleet refused, or destroyed before its boot reached the fleet, was never created
      // there; a refused request never reaches it (and is reported above if the fleet holds it).
      const neverCreated = vm.status === 'failed' || vm.status === 'destroyed' || vm.status === 'rejected';
      if (!fleetIds.has(vm.vm_id) && !neverCreated) problems.push(`VM ${vm.vm_id} (${vm.status}) is in Postgres but not at the fleet`);
    }
    const creates = stats.by_tenant[tenantId]?.creates ?? 0;
    if (creates !== items.length) problems.push(`tenant ${tenantId}: the fleet created ${creates} VMs but holds ${items.length}`);
    const destroyed = items.filter((vm) => vm.status === 'destroyed' && byId.get(vm.vm_id)?.status === 'destroyed').length;
    const fleetDestroys = stats.by_tenant[tenantId]?.destroys ?? 0;
    if (fleetDestroys < destroyed)
      problems.push(`tenant ${tenantId}: the fleet destroyed ${fleetDestroys} VMs, but holds ${destroyed} destroyed ones Postgres has destroyed`);
  }

  // 4. Each tenant workflow's usage equals the VMs that hold quota.
  const client = await stack.temporalClient();
  for (const tenantId of tenantIds) {
    const holding = vms.filter((vm) => vm.tenant_id === tenantId && HOLDING_QUOTA.has(vm.status));
    const storage = holding.reduce((sum, vm) => sum + vm.storage_gb, 0);
    const usage = await client.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
    if (usage.vms !== holding.length || usage.storage_gb !== storage) {
      problems.push(`tenant ${tenantId}: usage says ${usage.vms} VMs / ${usage.storage_gb} GB, Postgres has ${holding.length} / ${storage} GB`);
    }
    if (usage.provisioning !== 0 || usage.destroying !== 0)
      problems.push(`tenant ${tenantId}: usage still shows ${usage.provisioning} provisioning, ${usage.destroying} destroying`);
  }

  // 5. The ledger holds each VM's steps exactly once, and its chain is intact.
  const events = await stack.db.selectFrom('audit_events').select(['event_id', 'event_type', 'vm_id', 'tenant_id']).orderBy('seq').execute();
  const steps = new Map<string, Map<string, number>>();
  for (const e of events) {
    if (!e.vm_id) continue;
    const counts = steps.get(e.vm_id) ?? new Map<string, number>();
    counts.set(e.event_type, (counts.get(e.event_type) ?? 0) + 1);
    steps.set(e.vm_id, counts);
  }
  for (const vm of vms) {
    const counts = steps.get(vm.vm_id) ?? new Map<string, number>();
    const expected = EXPECTED_STEPS[vm.status];
    if (!expected) continue;
    const admission = admissionSteps(vm);
    for (const [type, want] of [
      ['VM_SPAWN_REQUESTED', admission.requested],
      ['VM_SPAWN_REJECTED', admission.rejected],
    ] as const) {
      if ((counts.get(type) ?? 0) !== want)
        problems.push(`VM ${vm.vm_id} (${vm.status}, attempt ${vm.admission_attempt}) has ${counts.get(type) ?? 0} ${type} in the ledger, expected ${want}`);
    }
    for (const type of expected.once)
      if ((counts.get(type) ?? 0) !== 1) problems.push(`VM ${vm.vm_id} (${vm.status}) has ${counts.get(type) ?? 0} ${type} in the ledger, expected 1`);
    for (const [type, count] of counts) {
      if (type === 'VM_SPAWN_REQUESTED' || type === 'VM_SPAWN_REJECTED' || expected.once.includes(type)) continue;
      if (expected.optional?.includes(type) && count === 1) continue;
      problems.push(`VM ${vm.vm_id} (${vm.status}) has ${count} unexpected ${type} in the ledger`);
    }
  }
  // Every recorded refusal names a VM of these tenants (counted per VM above): none is recorded for a request Postgres never held.
  const strayRefusals = events.filter((e) => e.event_type === 'VM_SPAWN_REJECTED' && tenantIds.includes(e.tenant_id ?? '') && !byId.has(e.vm_id ?? ''));
  if (strayRefusals.length > 0) problems.push(`${strayRefusals.length} VM_SPAWN_REJECTED in the ledger name no VM in Postgres`);
  const chain = await verifyChain(stack.db);
  if (!chain.valid) problems.push(`ledger chain broken at seq ${chain.first_bad_seq}: ${chain.reason}`);

  // 6. The stream holds every ledger entry exactly once, under Nats-Msg-Id = event_id, and nothing else.
  const messages = await readStream(stack);
  const perEvent = new Map<string, number>();
  for (const m of messages) {
    perEvent.set(m.eventId, (perEvent.get(m.eventId) ?? 0) + 1);
    if (m.msgId !== m.eventId) problems.push(`stream message for ${m.eventId} has Nats-Msg-Id ${m.msgId}`);
  }
  const ledgerIds = new Set(events.map((e) => e.event_id));
  let missing = 0;
  for (const e of events) {
    const count = perEvent.get(e.event_id) ?? 0;
    if (count === 0) missing++;
    else if (count > 1) problems.push(`event ${e.event_id} (${e.event_type}) is ${count} times in the stream`);
  }
  if (missing > 0) problems.push(`${missing} of ${events.length} ledger events are not in the stream yet`);
  for (const id of perEvent.keys()) if (!ledgerIds.has(id)) problems.push(`stream holds event ${id} that the ledger does not`);

  const rejectedRows = byStatus.rejected ?? 0;
  return {
    problems,
    report: { vms: vms.length - rejectedRows, rejected: rejectedRows, byStatus, ledgerEvents: events.length, streamMessages: messages.length },
  };
}

/**
 * Waits until every check passes (the system is allowed time to finish its retries), then returns
 * the summary; after `timeoutMs` it throws with the mismatches of the last pass.
 */
export async function expectConvergence(
  stack: PrivateStack,
  tenantIds: readonly string[],
  requests: readonly ClientRequest[],
  timeoutMs = 90_000,
): Promise<ConvergenceReport> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    try {
      const { problems, report } = await convergenceProblems(stack, tenantIds, requests);
      if (problems.length === 0) return report;
      last = problems;
    } catch (error) {
      last = [`check failed: ${error instanceof Error ? error.message : String(error)}`];
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the system did not converge within ${timeoutMs} ms:\n  ${last.slice(0, 30).join('\n  ')}${last.length > 30 ? `\n  … ${last.length - 30} more` : ''}\n` +
          `--- worker (last lines) ---\n${stack.tail('worker', 15)}\n--- api (last lines) ---\n${stack.tail('api', 10)}`,
      );
    }
    await sleep(1_000);
  }
}
