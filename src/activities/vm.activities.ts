import { Context } from '@temporalio/activity';
import type { ExpressionBuilder, Kysely, Transaction } from 'kysely';
import type { Database, VmRow } from '../db/tables';
import type { FleetClient } from '../fleet/fleet-client';
import type { FleetVm } from '../fleet/fleet-types';
import type { LedgerWriter } from '../ledger/ledger-writer';
import type { WorkerMetrics } from '../metrics/worker-metrics';
import type { AuditEventType } from '../shared/audit-event-types';
import type { RequestContext } from '../shared/request-context';
import type { BootOutcome, SettleOutcome, WorkCause } from '../shared/tenant-workflow.state';
import { faultPoint } from '../testing/fault-point';
import { findTenantVm, STATUSES_HOLDING_QUOTA, transitionVm } from '../vms/vm.repository';
import { recordVmStep } from '../ledger/vm-steps';
import { vmLifecycleEventId } from '../ledger/deterministic-ids';
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
const HOLDING = STATUSES_HOLDING_QUOTA;
const ADMISSION_LOST = 'admission_lost';
const OWN_TRANSITION = { afterOwnTransition: true };

/** The context of a step the worker takes on behalf of an earlier request. */
function contextOf(cause: WorkCause): RequestContext {
  return { request_id: cause.request_id, actor_token_id: cause.actor_token_id, actor_scope: null, source_ip: null, user_agent: null };
}

/**
 * The VM lifecycle after the tenant workflow's decision (docs/admission-protocol.md): the boot
 * confirms the admitted row and writes VM_RUNNING, the teardown VM_DESTROYED, a failure VM_FAILED.
 * Every step is idempotent (conditional transitions, ledger entries keyed by VM and step), so a
 * retried or resumed activity changes nothing twice.
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

  /**
   * The row of a VM the workflow admitted, confirmed (`requested` → `provisioning`) if it was still
   * only requested, under the admission epoch of the run that decided it: a boot of a run lost to a
   * rebuild (a new epoch) cannot confirm a row the rebuilt run has decided otherwise.
   */
  async function confirmAdmitted(tenantId: string, vmId: string, epoch: number): Promise<VmRow> {
    // One statement in the usual case (the row is still only requested), a read only when it is not;
    // through the ledger writer, whose group commit shares one transaction among the boots and
    // records of the moment (a confirmation writes no ledger entry).
    const confirmed = await ledger.run((trx) =>
      trx
        .updateTable('vms')
        .set({ status: 'provisioning', updated_at: now() })
        .where('vm_id', '=', vmId)
        .where('tenant_id', '=', tenantId)
        .where('status', '=', 'requested')
        .where((eb) => eb.exists(eb.selectFrom('tenants').select('tenant_id').where('tenant_id', '=', tenantId).where('admission_epoch', '=', String(epoch))))
        .returningAll()
        .executeTakeFirst(),
    );
    if (confirmed) return confirmed;
    const row = await findTenantVm(db, tenantId, vmId);
    if (!row) throw new Error(`VM ${vmId} has no row in Postgres; it is never spawned without one`);
    return row;
  }

  /**
   * Runs a fleet call while heartbeating every 500 ms; a cancellation (a destroy) aborts the call and
   * throws the activity's CancelledFailure at once instead of waiting for the fleet's answer.
   */
  async function whileHeartbeating<T>(vmId: string, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ctx = Context.current();
    ctx.heartbeat({ vm_id: vmId });
    const beat = setInterval(() => ctx.heartbeat({ vm_id: vmId }), 500);
    try {
      return await Promise.race([call(ctx.cancellationSignal), ctx.cancelled]);
    } finally {
      clearInterval(beat);
    }
  }

  /** Whether the VM's recorded VM_DESTROYED was written for the request `cause` names. */
  async function destroyedBy(vmId: string, cause: WorkCause): Promise<boolean> {
    const entry = await db.selectFrom('audit_events').select('request_id').where('event_id', '=', vmLifecycleEventId(vmId, 'VM_DESTROYED')).executeTakeFirst();
    return entry?.request_id === cause.request_id;
  }

  /**
   * Fails a VM its run admitted. Fenced by the run's admission epoch: an attempt of a run a rebuild
   * replaced changes nothing (the rebuilt run counted the row and settles it itself). A row holding
   * quota is first marked `destroying` (so a rebuild in the middle resumes its teardown), then the
   * fleet destroys it (a late boot may have written running: failed all the same), then it is failed.
   * A row still `requested` is failed at once: nothing can be at the fleet.
   */
  async function failAdmitted(tenantId: string, vmId: string, reason: string, cause: WorkCause, epoch: number): Promise<SettleOutcome> {
    const at = now();
    const current = (eb: ExpressionBuilder<Database, 'vms'>) =>
      eb.exists(eb.selectFrom('tenants').select('tenant_id').where('tenant_id', '=', tenantId).where('admission_epoch', '=', String(epoch)));
    const row = await findTenantVm(db, tenantId, vmId);
    if (!row) return { released: false };
    if (row.status === 'requested') {
      const failed = await recorded('VM_FAILED', async (trx) => {
        const moved = await trx
          .updateTable('vms')
          .set({ status: 'failed', failure_reason: reason, updated_at: at })
          .where('vm_id', '=', vmId)
          .where('status', '=', 'requested')
          .where(current)
          .executeTakeFirst();
        if (Number(moved.numUpdatedRows) === 0) return false;
        await recordVmStep(
          trx,
          { tenant_id: tenantId, vm_id: vmId, event_type: 'VM_FAILED', context: contextOf(cause), at, details: { reason } },
          OWN_TRANSITION,
        );
        return true;
      });
      if (failed) return { released: false };
    }
    const marked = await db
      .updateTable('vms')
      .set({ updated_at: at, status: 'destroying' })
      .where('vm_id', '=', vmId)
      .where('status', 'in', ['provisioning', 'running', 'destroying'])
      .where(current)
      .executeTakeFirst();
    if (Number(marked.numUpdatedRows) === 0) return { released: false };
    await fleet.destroy(vmId);
    return { released: await settleRow(tenantId, vmId, 'failed', reason, cause) };
  }

  /**
   * Moves the row to `to` and records the step, once. Returns whether it left a status holding quota
   * (a `requested` row holds none: it is closed too, releasing nothing).
   */
  async function settleRow(tenantId: string, vmId: string, to: 'destroyed' | 'failed', reason: string | null, cause: WorkCause): Promise<boolean> {
    const at = now();
    const eventType = to === 'destroyed' ? 'VM_DESTROYED' : 'VM_FAILED';
    const details = reason === null ? undefined : { reason };
    return recorded(eventType, async (trx) => {
      // A boot attempt past its deadline may still have written running after the fleet destroy: failed all the same.
      const released = await transitionVm(trx, vmId, HOLDING, to, at, reason);
      if (released || (await transitionVm(trx, vmId, ['requested'], to, at, reason))) {
        await recordVmStep(trx, { tenant_id: tenantId, vm_id: vmId, event_type: eventType, context: contextOf(cause), at, details }, OWN_TRANSITION);
      }
      return released;
    });
  }

  return {
    /**
     * Boots an admitted VM. Its first step confirms the row (`requested` → `provisioning`): this
     * activity exists only because the workflow durably decided to admit the VM, so from here the row
     * holds quota. Then it spawns the VM at the fleet (keyed by vm_id, so a retried attempt never makes
     * a second VM), heartbeating while the call is in flight so a destroy stops it within a second, and
     * records VM_RUNNING. A refusal retrying cannot fix comes back as `failed`; transient fleet errors
     * throw and are retried, within the boot deadline the VM got at admission.
     */
    async bootVm({ tenant_id, vm_id, cause, epoch = 0 }: { tenant_id: string; vm_id: string; cause: WorkCause; epoch?: number }): Promise<BootOutcome> {
      const row = await confirmAdmitted(tenant_id, vm_id, epoch);
      faultPoint('worker.boot.after-confirm');
      switch (row.status) {
        case 'running':
          return { status: 'running', failure_reason: null };
        case 'destroying':
        case 'destroyed':
          return { status: 'destroy_requested', failure_reason: null };
        case 'provisioning':
          break;
        case 'requested':
          // Not confirmed: this boot's run was superseded by a rebuild, which decides the request anew.
          return { status: 'failed', failure_reason: 'superseded' };
        default:
          return { status: 'failed', failure_reason: row.failure_reason ?? `VM is ${row.status}` };
      }
      let booted: FleetVm;
      try {
        const created = await whileHeartbeating(vm_id, (signal) =>
          fleet.spawn({ request_id: vm_id, tenant_id, vcpus: row.vcpus, memory_mb: row.memory_mb, storage_gb: row.storage_gb, image: row.image }, signal),
        );
        faultPoint('worker.boot.after-fleet-create');
        booted = await awaitBoot(created);
      } catch (error) {
        if (error instanceof FleetRejectedError) return { status: 'failed', failure_reason: error.code };
        throw error;
      }
      if (booted.status !== 'running') return { status: 'failed', failure_reason: booted.failure_reason ?? `fleet reported ${booted.status}` };
      const at = now();
      await recorded('VM_RUNNING', async (trx) => {
        if (await transitionVm(trx, vm_id, ['provisioning'], 'running', at)) {
          await recordVmStep(
            trx,
            { tenant_id, vm_id, event_type: 'VM_RUNNING', context: contextOf(cause), at, details: { host_id: booted.host_id } },
            OWN_TRANSITION,
          );
        }
      });
      return { status: 'running', failure_reason: null };
    },

    /**
     * Destroys the VM at the fleet (which keeps a tombstone: a create arriving later is refused) and
     * records VM_DESTROYED; safe to repeat. `released`: this destroy (this call, or an earlier attempt
     * for the same request, e.g. one whose completion a continue-as-new did not wait for) moved the row
     * out of a status holding quota; false for a stale repeat of a destroy another request completed. No heartbeat: nothing cancels it, and each recorded heartbeat is a billed action.
     */
    async teardownVm({ tenant_id, vm_id, cause }: { tenant_id: string; vm_id: string; cause: WorkCause }): Promise<SettleOutcome & { storage_gb: number }> {
      const row = await findTenantVm(db, tenant_id, vm_id);
      await fleet.destroy(vm_id);
      faultPoint('worker.teardown.after-fleet-destroy');
      const released = (await settleRow(tenant_id, vm_id, 'destroyed', null, cause)) || (await destroyedBy(vm_id, cause));
      return { released, storage_gb: row?.storage_gb ?? 0 };
    },

    /**
     * A request a rebuilt run found undecided and that no longer fits (docs/admission-protocol.md). A
     * client may hold a 202 from the lost run, so it ends `failed` (admission_lost), not refused. Still
     * `requested`: nothing can be at the fleet (a boot confirms the row before it calls the fleet).
     * Confirmed meanwhile by the lost run's boot: failed as any admitted VM is (failVm).
     */
    async abandonAdmission({
      tenant_id,
      vm_id,
      cause,
      epoch = 0,
    }: {
      tenant_id: string;
      vm_id: string;
      cause: WorkCause;
      epoch?: number;
    }): Promise<SettleOutcome> {
      return failAdmitted(tenant_id, vm_id, ADMISSION_LOST, cause, epoch);
    },

    /**
     * A VM that will not run (refused, failed to boot, past its boot deadline): destroyed at the
     * fleet, in case a half-booted one is there, then recorded VM_FAILED with its reason (failAdmitted).
     */
    async failVm({
      tenant_id,
      vm_id,
      reason,
      cause,
      epoch = 0,
    }: {
      tenant_id: string;
      vm_id: string;
      reason: string;
      cause: WorkCause;
      epoch?: number;
    }): Promise<SettleOutcome> {
      return failAdmitted(tenant_id, vm_id, reason, cause, epoch);
    },
  };
}
