import { Context, ApplicationFailure } from '@temporalio/activity';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../db/tables';
import type { FleetClient } from '../../fleet/fleet-client';
import { FleetRejectedError } from '../../fleet/fleet-errors';
import type { FleetVm } from '../../fleet/fleet-types';
import type { LedgerWriter } from '../../ledger/ledger-writer';
import type { WorkerMetrics } from '../../metrics/worker-metrics';
import type { AuditEventType } from '../../shared/audit-event-types';
import { FailureType } from '../../shared/failure-types';
import type { ProvisionOutcome, TenantSnapshot, TrackedVm } from '../../shared/legacy/tenant-v1.state';
import type { RequestContext } from '../../shared/request-context';
import type { SpawnVmRequest } from '../../shared/tenant-workflow.messages';
import { findTenant } from '../../tenants/tenant.repository';
import type { VmRow } from '../../db/tables';
import type { VmShape } from '../../shared/vm';
import { findTenantVm, STATUSES_HOLDING_QUOTA, transitionVm } from '../../vms/vm.repository';
import { recordVmStep } from '../../ledger/vm-steps';

/**
 * The activities of tenant-workflow runs started before state version 2 (workflows/legacy/tenant-v1.ts),
 * unchanged, so such runs finish their current run as they began it. Kept for replay only: removed with
 * the rest of the frozen code (src/workflows/legacy/README.md).
 */
/** The version-1 code's queries (frozen with it). */
async function listVmsHoldingQuota(db: Kysely<Database>, tenantId: string): Promise<VmRow[]> {
  return db
    .selectFrom('vms')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', [...STATUSES_HOLDING_QUOTA])
    .execute();
}

async function insertVmIfAbsent(db: Transaction<Database>, vm: { vm_id: string; tenant_id: string; shape: VmShape; created_at: Date }): Promise<void> {
  await db
    .insertInto('vms')
    .values({ vm_id: vm.vm_id, tenant_id: vm.tenant_id, ...vm.shape, status: 'provisioning', created_at: vm.created_at, updated_at: vm.created_at })
    .onConflict((oc) => oc.column('vm_id').doNothing())
    .execute();
}

export function createLegacyV1Activities(deps: VmActivityDeps) {
  return { ...createLegacyTenantActivities({ db: deps.db }), ...createLegacyVmActivities(deps) };
}

// Work resumed from Postgres has no live request behind it.
const RECOVERY_CONTEXT: RequestContext = { request_id: 'recovery', actor_token_id: null, actor_scope: 'system:recovery', source_ip: null, user_agent: null };

function createLegacyTenantActivities({ db }: { db: Kysely<Database> }) {
  return {
    /** Rebuilds a tenant workflow's state from Postgres, the product's truth for quota and VMs. */
    async loadTenantSnapshot({ tenant_id }: { tenant_id: string }): Promise<TenantSnapshot> {
      const tenant = await findTenant(db, tenant_id, { includeDeleted: true });
      if (!tenant) throw ApplicationFailure.create({ type: FailureType.InvalidRequest, message: `no tenant ${tenant_id}`, nonRetryable: true });
      const rows = await listVmsHoldingQuota(db, tenant_id);
      const vms = rows.map((row): TrackedVm => ({
        vm_id: row.vm_id,
        storage_gb: row.storage_gb,
        phase: row.status === 'running' ? 'running' : row.status === 'destroying' ? 'destroying' : 'provisioning',
        spawn: {
          vm_id: row.vm_id,
          shape: { vcpus: row.vcpus, memory_mb: row.memory_mb, storage_gb: row.storage_gb, image: row.image, name: row.name },
          created_at: row.created_at.toISOString(),
          context: RECOVERY_CONTEXT,
        },
        destroy: row.status === 'destroying' ? { context: RECOVERY_CONTEXT } : null,
      }));
      return { quota: { max_vms: tenant.max_vms, storage_quota_gb: tenant.storage_quota_gb }, closed: tenant.deleted_at !== null, vms, settled: [] };
    },
  };
}

interface VmActivityDeps {
  db: Kysely<Database>;
  ledger: LedgerWriter;
  fleet: FleetClient;
  now: () => Date;
  bootPollMs: number;
  metrics?: WorkerMetrics;
}

function createLegacyVmActivities({ db, ledger, fleet, now, bootPollMs, metrics }: VmActivityDeps) {
  /** Runs a state change with its ledger entry in one transaction, timed for the ledger metric. */
  async function recorded(eventType: AuditEventType, work: (trx: Transaction<Database>) => Promise<void>): Promise<void> {
    const end = metrics?.ledgerAppend.startTimer({ event_type: eventType });
    await ledger.run(work);
    end?.();
  }

  async function markFailed(tenantId: string, request: SpawnVmRequest, reason: string): Promise<ProvisionOutcome> {
    const at = now();
    await recorded('VM_FAILED', async (trx) => {
      await transitionVm(trx, request.vm_id, ['provisioning', 'destroying'], 'failed', at, reason);
      await recordVmStep(trx, { tenant_id: tenantId, vm_id: request.vm_id, event_type: 'VM_FAILED', context: request.context, at, details: { reason } });
    });
    return { status: 'failed', failure_reason: reason };
  }

  /** Waits for the fleet to finish booting, heartbeating so a dead worker's attempt is retried elsewhere. */
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
     * Spawns the VM at the fleet (keyed by vm_id, so a retried attempt never makes a second VM),
     * waits until it runs, and records each step in Postgres and the ledger. Refusals that retrying
     * cannot fix come back as a `failed` outcome; transient fleet errors throw and are retried.
     */
    async provisionVm({ tenant_id, request }: { tenant_id: string; request: SpawnVmRequest }): Promise<ProvisionOutcome> {
      await recorded('VM_SPAWN_REQUESTED', async (trx) => {
        await insertVmIfAbsent(trx, { vm_id: request.vm_id, tenant_id, shape: request.shape, created_at: new Date(request.created_at) });
        await recordVmStep(trx, {
          tenant_id,
          vm_id: request.vm_id,
          event_type: 'VM_SPAWN_REQUESTED',
          context: request.context,
          at: new Date(request.created_at),
          details: { shape: request.shape },
        });
      });
      const row = await findTenantVm(db, tenant_id, request.vm_id);
      if (row?.status === 'failed') return { status: 'failed', failure_reason: row.failure_reason };
      let booted: FleetVm;
      try {
        const { vcpus, memory_mb, storage_gb, image } = request.shape;
        booted = await awaitBoot(await fleet.spawn({ request_id: request.vm_id, tenant_id, vcpus, memory_mb, storage_gb, image }));
      } catch (error) {
        if (error instanceof FleetRejectedError) return markFailed(tenant_id, request, error.code);
        throw error;
      }
      if (booted.status !== 'running') return markFailed(tenant_id, request, booted.failure_reason ?? `fleet reported ${booted.status}`);
      const at = now();
      await recorded('VM_RUNNING', async (trx) => {
        await transitionVm(trx, request.vm_id, ['provisioning'], 'running', at);
        await recordVmStep(trx, {
          tenant_id,
          vm_id: request.vm_id,
          event_type: 'VM_RUNNING',
          context: request.context,
          at,
          details: { host_id: booted.host_id },
        });
      });
      return { status: 'running', failure_reason: null };
    },

    /** Destroys the VM at the fleet and records it; safe to repeat. */
    async destroyVm({ tenant_id, vm_id, context }: { tenant_id: string; vm_id: string; context: RequestContext }): Promise<void> {
      const requestedAt = now();
      await recorded('VM_DESTROY_REQUESTED', async (trx) => {
        await transitionVm(trx, vm_id, ['provisioning', 'running'], 'destroying', requestedAt);
        await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_DESTROY_REQUESTED', context, at: requestedAt });
      });
      await fleet.destroy(vm_id);
      const at = now();
      await recorded('VM_DESTROYED', async (trx) => {
        await transitionVm(trx, vm_id, ['provisioning', 'running', 'destroying'], 'destroyed', at);
        await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_DESTROYED', context, at });
      });
    },
  };
}
