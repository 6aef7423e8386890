import { Context } from '@temporalio/activity';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/tables';
import type { FleetClient } from '../fleet/fleet-client';
import type { FleetVm } from '../fleet/fleet-types';
import type { LedgerWriter } from '../ledger/ledger-writer';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import type { AuditEventType } from '../shared/audit-event-types';
import type { RequestContext } from '../shared/request-context';
import type { SpawnVmRequest } from '../shared/tenant-workflow.messages';
import type { BootOutcome, DestroyRecordOutcome, SpawnRecordOutcome, WorkCause } from '../shared/tenant-workflow.state';
import type { VmStatus } from '../shared/vm';
import { findTenantVm, insertVmForLiveTenant, transitionVm } from '../vms/vm.repository';
import { recordVmStep } from './vm-audit';
import { FleetRejectedError } from '../fleet/fleet-errors';

export interface VmActivityDeps {
  db: Kysely<Database>;
  ledger: LedgerWriter;
  fleet: FleetClient;
  now: () => Date;
  bootPollMs: number;
  metrics?: WorkerMetrics;
}

/** Every step below is recorded only by the transaction whose insert or transition made it. */
const OWN_TRANSITION = { afterOwnTransition: true };

/** The context of a step the worker takes on behalf of an earlier request. */
function contextOf(cause: WorkCause): RequestContext {
  return { request_id: cause.request_id, actor_token_id: cause.actor_token_id, actor_scope: null, source_ip: null, user_agent: null };
}

/**
 * The VM lifecycle, one writer per fact: the admission writes the row and VM_SPAWN_REQUESTED, the
 * destroy request moves it to destroying with VM_DESTROY_REQUESTED, the boot writes VM_RUNNING, the
 * teardown VM_DESTROYED, a failure VM_FAILED. Every step is idempotent (conditional transitions,
 * ledger entries keyed by VM and step), so a retried or resumed activity changes nothing twice.
 */
export function createVmActivities({ db, ledger, fleet, now, bootPollMs, metrics }: VmActivityDeps) {
  /** Runs a state change with its ledger entry in one transaction, timed for the ledger metric. */
  async function recorded<T>(eventType: AuditEventType, work: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    const end = metrics?.ledgerAppend.startTimer({ event_type: eventType });
    const result = await ledger.run(work);
    end?.();
    return result;
  }

  /** Waits for the fleet to finish booting, heartbeating so a dead worker's attempt is retried and a destroy can cancel it. */
  async function awaitBoot(vm: FleetVm): Promise<FleetVm> {
    let current = vm;
    while (current.status === 'booting') {
      Context.current().heartbeat({ vm_id: vm.vm_id });
      await Context.current().sleep(bootPollMs);
      const next = await fleet.get(vm.vm_id);
      if (!next) throw new Error(`fleet lost VM ${vm.vm_id} while it was booting`);
      current = next;
    }
    return current;
  }

  return {
    /**
     * Writes the admitted VM's row (status provisioning) and VM_SPAWN_REQUESTED in one transaction,
     * before the workflow answers the spawn. Repeatable: a VM still provisioning is this admission's.
     */
    async recordSpawnAdmitted({ tenant_id, request }: { tenant_id: string; request: SpawnVmRequest }): Promise<SpawnRecordOutcome> {
      const createdAt = new Date(request.created_at);
      return recorded('VM_SPAWN_REQUESTED', async (trx) => {
        if (await insertVmForLiveTenant(trx, { vm_id: request.vm_id, tenant_id, shape: request.shape, created_at: createdAt })) {
          await recordVmStep(trx, { tenant_id, vm_id: request.vm_id, event_type: 'VM_SPAWN_REQUESTED', context: request.context, at: createdAt, details: { shape: request.shape } }, OWN_TRANSITION);
          return { outcome: 'recorded' };
        }
        const existing = await findTenantVm(trx, tenant_id, request.vm_id);
        if (!existing) return { outcome: 'tenant_deleted' };
        // Only the admission that reserved it can have written a row still provisioning (an earlier
        // attempt of this activity); any later status is a VM settled long ago.
        return existing.status === 'provisioning' ? { outcome: 'recorded' } : { outcome: 'exists', status: existing.status as VmStatus };
      });
    },

    /** Moves the VM to destroying and records VM_DESTROY_REQUESTED, before the workflow answers the destroy. */
    async recordDestroyRequested({ tenant_id, vm_id, context }: { tenant_id: string; vm_id: string; context: RequestContext }): Promise<DestroyRecordOutcome> {
      const at = now();
      return recorded('VM_DESTROY_REQUESTED', async (trx) => {
        const row = await findTenantVm(trx, tenant_id, vm_id);
        if (!row) return { outcome: 'not_found' };
        if (await transitionVm(trx, vm_id, ['provisioning', 'running'], 'destroying', at)) {
          await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_DESTROY_REQUESTED', context, at }, OWN_TRANSITION);
          return { outcome: 'recorded', storage_gb: row.storage_gb };
        }
        // Already destroying: recorded by an earlier attempt (whose update the workflow may have lost).
        if (row.status === 'destroying') return { outcome: 'recorded', storage_gb: row.storage_gb };
        return { outcome: 'unchanged', status: row.status as VmStatus };
      });
    },

    /**
     * Spawns the VM at the fleet (keyed by vm_id, so a retried attempt never makes a second VM) and
     * waits until it runs; records VM_RUNNING. A refusal retrying cannot fix comes back as `failed`;
     * transient fleet errors throw and are retried, within the workflow's boot deadline.
     */
    async bootVm({ tenant_id, vm_id, cause }: { tenant_id: string; vm_id: string; cause: WorkCause }): Promise<BootOutcome> {
      const row = await findTenantVm(db, tenant_id, vm_id);
      if (!row) throw new Error(`VM ${vm_id} has no row in Postgres; it is never spawned without one`);
      if (row.status === 'running') return { status: 'running', failure_reason: null };
      if (row.status === 'destroying') return { status: 'destroy_requested', failure_reason: null };
      if (row.status !== 'provisioning') return { status: 'failed', failure_reason: row.failure_reason ?? `VM is ${row.status}` };
      let booted: FleetVm;
      try {
        booted = await awaitBoot(await fleet.spawn({ request_id: vm_id, tenant_id, vcpus: row.vcpus, memory_mb: row.memory_mb, storage_gb: row.storage_gb, image: row.image }));
      } catch (error) {
        if (error instanceof FleetRejectedError) return { status: 'failed', failure_reason: error.code };
        throw error;
      }
      if (booted.status !== 'running') return { status: 'failed', failure_reason: booted.failure_reason ?? `fleet reported ${booted.status}` };
      const at = now();
      await recorded('VM_RUNNING', async (trx) => {
        if (await transitionVm(trx, vm_id, ['provisioning'], 'running', at)) {
          await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_RUNNING', context: contextOf(cause), at, details: { host_id: booted.host_id } }, OWN_TRANSITION);
        }
      });
      return { status: 'running', failure_reason: null };
    },

    /**
     * Destroys the VM at the fleet and records VM_DESTROYED; safe to repeat. No heartbeat: its options
     * set no heartbeat timeout and nothing cancels it, and each recorded heartbeat is a billed action.
     */
    async teardownVm({ tenant_id, vm_id, cause }: { tenant_id: string; vm_id: string; cause: WorkCause }): Promise<void> {
      await fleet.destroy(vm_id);
      const at = now();
      await recorded('VM_DESTROYED', async (trx) => {
        if (await transitionVm(trx, vm_id, ['provisioning', 'running', 'destroying'], 'destroyed', at)) {
          await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_DESTROYED', context: contextOf(cause), at }, OWN_TRANSITION);
        }
      });
    },

    /**
     * A VM that will not run (refused, failed to boot, or past its boot deadline): destroyed at the
     * fleet, in case a half-booted one is there, then recorded VM_FAILED; its quota is released.
     */
    async failVm({ tenant_id, vm_id, reason, cause }: { tenant_id: string; vm_id: string; reason: string; cause: WorkCause }): Promise<void> {
      await fleet.destroy(vm_id);
      const at = now();
      await recorded('VM_FAILED', async (trx) => {
        if (await transitionVm(trx, vm_id, ['provisioning', 'destroying'], 'failed', at, reason)) {
          await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_FAILED', context: contextOf(cause), at, details: { reason } }, OWN_TRANSITION);
        }
      });
    },

  };
}
