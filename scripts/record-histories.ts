/**
 * Records tenant-workflow histories for the replay test (test/workflows/tenant-workflow.replay.test.ts).
 *
 *   node --import tsx scripts/record-histories.ts [output-dir]
 *
 * Starts a throwaway Temporal dev server, runs the real tenant workflow on a worker, drives it
 * through the real workflow client (update-with-start, search attribute, memo) and saves each
 * scenario's history as JSON. The activities are in-memory stand-ins with the real signatures over
 * a fake Postgres (a status per VM row), and the script plays the API's part in the admission
 * protocol (docs/admission-protocol.md): it records a row `requested` before a spawn and moves it to
 * `destroying` before a destroy. A history records only what activities returned, so Postgres, NATS
 * and the fleet are not needed, and a stand-in lets a scenario hold a VM in provisioning for as long
 * as it needs. The whole run takes about a minute: one scenario waits out the workflow's 15 s grace
 * period for requests a rebuild found undecided.
 *
 * It records the current workflow's scenarios (the admission-v3 protocol) as `v3-*.json`, and never
 * overwrites a history: it stops before starting anything if one of its files exists. The older files
 * stay as they are and prove that runs started by earlier code still replay: `v2-*.json` were recorded
 * by the state-version-2 workflow (before the admission-v3 patch), the unprefixed ones by the
 * version-1 workflow (before the tenant-state-v2 patch); `upgrade-*.json` by the upgrade procedure's
 * live test (test/workflows/tenant-workflow-upgrade.test.ts). Add new files after an intended,
 * versioned change to the workflow (docs/upgrades.md); never re-record to make a failing replay pass.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { createActivities } from '../src/activities';
import { REPO_ROOT, ensureTemporalBinary } from '../src/devstack/temporal-binary';
import { startTemporalDevServer } from '../src/devstack/temporal-dev-server';
import type { CarriedTenantStateV2 } from '../src/shared/legacy/tenant-v2.state';
import type { RequestContext } from '../src/shared/request-context';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { usageQuery, type DestroyVmResult, type SpawnVmResult, type TenantQuota } from '../src/shared/tenant-workflow.messages';
import type { TenantWorkflowInput } from '../src/shared/tenant-workflow.state';
import type { VmStatus } from '../src/shared/vm';
import { TENANT_ID_SEARCH_ATTRIBUTE } from '../src/temporal/search-attributes';
import { createTenantWorkflowClient } from '../src/temporal/tenant-workflow-client';
import type { TenantWorkflowGateway } from '../src/tenants/tenant-workflow-gateway';
import { STATUSES_HOLDING_QUOTA } from '../src/vms/vm.repository';
import { WORKFLOWS_PATH } from '../src/workers/workflow-bundle';

type Activities = ReturnType<typeof createActivities>;
/** The activities the current workflow schedules (the legacy ones serve only runs of older code). */
type RecordedActivities = Pick<
  Activities,
  'loadTenantForRebuild' | 'readAdmissionEpoch' | 'readVmStatuses' | 'recordTenantDeleted' | 'bootVm' | 'teardownVm' | 'failVm' | 'abandonAdmission'
>;

const OUTPUT_DIR = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'test/workflows/histories'));
/** The prefix of the files this script writes: the workflow version that recorded them. */
const PREFIX = 'v3-';
const TASK_QUEUE = 'record-histories';
const CONTEXT: RequestContext = {
  request_id: 'recorded',
  actor_token_id: 'tok-recorded',
  actor_scope: 'service:tenant-admin',
  source_ip: '127.0.0.1',
  user_agent: 'record-histories',
};
const SHAPE = { vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12', name: null };
/** The workflow's PENDING_GRACE_MS, plus time for the decision and the activities it starts. */
const PENDING_GRACE_WAIT_MS = 15_000 + 15_000;

/** One row of the fake `vms` table. */
interface FakeVm {
  status: VmStatus;
  storage_gb: number;
  created_at_ms: number;
}

/** What the stand-in Postgres holds for one tenant. */
interface FakeTenant {
  quota: TenantQuota & { version: number };
  closed: boolean;
  epoch: number;
  vms: Map<string, FakeVm>;
}

const holdsQuota = (vm: FakeVm | undefined): boolean => vm !== undefined && (STATUSES_HOLDING_QUOTA as readonly VmStatus[]).includes(vm.status);

/**
 * In-memory stand-ins for the activities, moving rows as the real ones do (src/activities/
 * vm.activities.ts, tenant.activities.ts). A VM in `held` boots until released (heartbeating, so a
 * destroy can cancel it); one in `failing` is refused by the fleet.
 */
function fakeActivities(tenants: Map<string, FakeTenant>, held: Set<string>, failing: Set<string>): RecordedActivities {
  const tenantOf = (tenantId: string): FakeTenant => {
    const tenant = tenants.get(tenantId);
    if (!tenant) throw new Error(`no tenant ${tenantId}`);
    return tenant;
  };
  const rowOf = (tenantId: string, vmId: string): FakeVm => {
    const row = tenantOf(tenantId).vms.get(vmId);
    if (!row) throw new Error(`VM ${vmId} has no row in Postgres; it is never spawned without one`);
    return row;
  };
  /** settleRow: whether the row left a status holding quota (a `requested` one is closed, releasing nothing). */
  const settle = (row: FakeVm, to: 'destroyed' | 'failed'): boolean => {
    const released = holdsQuota(row);
    if (released || row.status === 'requested') row.status = to;
    return released;
  };
  return {
    async loadTenantForRebuild({ tenant_id }) {
      const tenant = tenantOf(tenant_id);
      tenant.epoch += 1;
      const rows = [...tenant.vms.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
      const holding = rows.map(([, vm]) => vm).filter(holdsQuota);
      return {
        totals: { quota: { ...tenant.quota }, closed: tenant.closed, vms: holding.length, storage_gb: holding.reduce((sum, vm) => sum + vm.storage_gb, 0) },
        admission_epoch: tenant.epoch,
        in_flight: rows
          .filter(([, vm]) => vm.status === 'provisioning' || vm.status === 'destroying')
          .map(([vm_id, vm]) => ({
            vm_id,
            storage_gb: vm.storage_gb,
            phase: vm.status === 'destroying' ? 'destroying' : 'provisioning',
            created_at_ms: vm.created_at_ms,
          })),
        undecided: rows
          .filter(([, vm]) => vm.status === 'requested')
          .sort(([a, x], [b, y]) => x.created_at_ms - y.created_at_ms || (a < b ? -1 : 1))
          .map(([vm_id, vm]) => ({ vm_id, storage_gb: vm.storage_gb, created_at_ms: vm.created_at_ms })),
      };
    },
    async readAdmissionEpoch({ tenant_id }) {
      return tenantOf(tenant_id).epoch;
    },
    async readVmStatuses({ tenant_id, vm_ids }) {
      const vms = tenantOf(tenant_id).vms;
      return Object.fromEntries(vm_ids.flatMap((vmId) => (vms.has(vmId) ? [[vmId, vms.get(vmId)!.status]] : [])));
    },
    async recordTenantDeleted({ tenant_id }) {
      const tenant = tenantOf(tenant_id);
      const vms = [...tenant.vms.values()].filter(holdsQuota).length;
      if (vms > 0) return { outcome: 'has_vms', vms };
      tenant.closed = true;
      return { outcome: 'deleted' };
    },
    async bootVm({ tenant_id, vm_id }) {
      const row = rowOf(tenant_id, vm_id);
      if (row.status === 'requested') row.status = 'provisioning'; // confirms the admission
      if (row.status === 'running') return { status: 'running', failure_reason: null };
      if (row.status === 'destroying' || row.status === 'destroyed') return { status: 'destroy_requested', failure_reason: null };
      if (row.status !== 'provisioning') return { status: 'failed', failure_reason: `VM is ${row.status}` };
      const context = Context.current();
      while (held.has(vm_id)) {
        context.heartbeat();
        await context.sleep(100);
      }
      if (failing.has(vm_id)) return { status: 'failed', failure_reason: 'image_refused' };
      if (row.status === 'provisioning') row.status = 'running';
      return { status: 'running', failure_reason: null };
    },
    async teardownVm({ tenant_id, vm_id }) {
      const row = tenantOf(tenant_id).vms.get(vm_id);
      return { released: row ? settle(row, 'destroyed') : false, storage_gb: row?.storage_gb ?? 0 };
    },
    async failVm({ tenant_id, vm_id }) {
      const row = tenantOf(tenant_id).vms.get(vm_id);
      return { released: row ? settle(row, 'failed') : false };
    },
    async abandonAdmission({ tenant_id, vm_id }) {
      const row = tenantOf(tenant_id).vms.get(vm_id);
      if (row?.status === 'requested') {
        row.status = 'failed';
        return { released: false };
      }
      return { released: row ? settle(row, 'failed') : false };
    },
  };
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`scenario went wrong: ${what}`);
}

/**
 * What a history shows: its event types (`TIMER_STARTED`, …) and `activity:<type>` for each activity
 * it scheduled. A scenario names the ones it exists to record, so a recording that missed its point
 * (a race gone the other way) fails here instead of adding a history that proves less than it says.
 */
function shownBy(history: proto.api.history.v1.IHistory): Set<string> {
  const shown = new Set<string>();
  for (const event of history.events ?? []) {
    shown.add(proto.api.enums.v1.EventType[event.eventType ?? 0]!.replace(/^EVENT_TYPE_/, ''));
    const activityType = event.activityTaskScheduledEventAttributes?.activityType?.name;
    if (activityType) shown.add(`activity:${activityType}`);
  }
  return shown;
}

async function main(): Promise<void> {
  const existing = existsSync(OUTPUT_DIR) ? (await readdir(OUTPUT_DIR)).filter((name) => name.startsWith(PREFIX) && name.endsWith('.json')) : [];
  if (existing.length > 0)
    throw new Error(
      `refusing to overwrite recorded histories in ${OUTPUT_DIR} (${existing.join(', ')}); record into another directory, or delete them on purpose`,
    );

  Runtime.install({ logger: new DefaultLogger('WARN') });
  const temporal = await startTemporalDevServer({ temporalBin: await ensureTemporalBinary(), headless: true, onLine: () => undefined });
  const connection = await Connection.connect({ address: temporal.address });
  const workerConnection = await NativeConnection.connect({ address: temporal.address });
  try {
    const client = new Client({ connection, namespace: temporal.namespace });
    const fakeTenants = new Map<string, FakeTenant>();
    const held = new Set<string>();
    const failing = new Set<string>();
    const worker = await Worker.create({
      connection: workerConnection,
      namespace: temporal.namespace,
      taskQueue: TASK_QUEUE,
      workflowsPath: WORKFLOWS_PATH,
      activities: fakeActivities(fakeTenants, held, failing),
      maxHeartbeatThrottleInterval: '1 second',
    });
    const tenants = createTenantWorkflowClient({ client, taskQueue: TASK_QUEUE });
    const canTenants = createTenantWorkflowClient({ client, taskQueue: TASK_QUEUE, continueAsNewAfterUpdates: 3 });
    const deadlineTenants = createTenantWorkflowClient({ client, taskQueue: TASK_QUEUE, limits: { boot_timeout_ms: 2000 } });

    /** A tenant in the fake Postgres, with the VM rows it already has (SHAPE's storage unless given). */
    const tenant = (id: string, quota: TenantQuota, rows: Record<string, { status: VmStatus; storage_gb?: number }> = {}) => {
      const vms = new Map(
        Object.entries(rows).map(([vmId, row]): [string, FakeVm] => [
          vmId,
          { status: row.status, storage_gb: row.storage_gb ?? SHAPE.storage_gb, created_at_ms: Date.now() },
        ]),
      );
      fakeTenants.set(id, { quota: { ...quota, version: 1 }, closed: false, epoch: 0, vms });
      return id;
    };
    const rowOf = (tenantId: string, vmId: string) => fakeTenants.get(tenantId)!.vms.get(vmId);
    /**
     * The API's spawn: records the row `requested`, asks the workflow, marks the row `rejected` on a
     * refusal. A tenant's first spawn starts its workflow, which finds that row undecided and holds it
     * pending until the update decides it: the path every new tenant takes.
     */
    const spawn = async (gateway: TenantWorkflowGateway, tenantId: string, vmId: string, attempt = 1): Promise<SpawnVmResult> => {
      const row = rowOf(tenantId, vmId);
      if (!row || row.status === 'rejected')
        fakeTenants.get(tenantId)!.vms.set(vmId, { status: 'requested', storage_gb: SHAPE.storage_gb, created_at_ms: Date.now() });
      const quota = fakeTenants.get(tenantId)!.quota;
      try {
        return await gateway.spawn(tenantId, {
          vm_id: vmId,
          shape: SHAPE,
          created_at: '2026-11-27T12:00:00.000Z',
          context: CONTEXT,
          quota: { ...quota },
          attempt,
        });
      } catch (error) {
        const requested = rowOf(tenantId, vmId);
        if (requested?.status === 'requested') requested.status = 'rejected';
        throw error;
      }
    };
    /** The API's destroy: moves a row holding quota to `destroying`, then asks the workflow with the row's storage. */
    const destroy = (gateway: TenantWorkflowGateway, tenantId: string, vmId: string, context = CONTEXT): Promise<DestroyVmResult> => {
      const row = rowOf(tenantId, vmId)!;
      if (row.status === 'provisioning' || row.status === 'running') row.status = 'destroying';
      return gateway.destroy(tenantId, vmId, context, row.storage_gb);
    };
    /** The API's quota change: Postgres first (version + 1), then the workflow. */
    const changeQuota = (tenantId: string, quota: TenantQuota & { version: number }) => {
      const fake = fakeTenants.get(tenantId)!;
      if (quota.version > fake.quota.version) fake.quota = { ...quota };
      return tenants.changeQuota(tenantId, quota, CONTEXT);
    };

    const usage = (tenantId: string) => client.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
    const settledTo = (tenantId: string, vms: number, timeoutMs?: number) =>
      waitFor(
        async () => {
          const u = await usage(tenantId);
          return u.vms === vms && u.provisioning === 0 && u.destroying === 0;
        },
        `${tenantId} to settle at ${vms} VMs`,
        timeoutMs,
      );
    const expectRefusal = async (work: Promise<unknown>, type: string) => {
      const error = await work.then(
        () => null,
        (e: unknown) => e as Error & { cause?: { type?: string } },
      );
      if (error?.cause?.type !== type) throw new Error(`expected a ${type} refusal, got ${String(error)}`);
    };
    const expectStatuses = (tenantId: string, expected: Record<string, VmStatus>) => {
      for (const [vmId, status] of Object.entries(expected))
        check(rowOf(tenantId, vmId)?.status === status, `${vmId} should be ${status}, is ${rowOf(tenantId, vmId)?.status}`);
    };
    /** Saves the history of `tenantId`'s workflow (its current run unless `runId`), after checking it shows `shows`. */
    const save = async (name: string, tenantId: string, shows: string[], runId?: string) => {
      const history = await client.workflow.getHandle(tenantWorkflowId(tenantId), runId).fetchHistory();
      const shown = shownBy(history);
      const missing = shows.filter((fact) => !shown.has(fact));
      if (missing.length > 0) throw new Error(`${name}: the history does not show ${missing.join(', ')}`);
      // The SDK's historyToJSON trips over two protobufjs copies in this install ("type must be a
      // Type"); the message's own toJSON gives the same camelCase JSON, which historyFromJSON reads.
      const json = proto.api.history.v1.History.fromObject(history).toJSON();
      await writeFile(path.join(OUTPUT_DIR, `${PREFIX}${name}.json`), JSON.stringify(json, null, 1) + '\n', { flag: 'wx' });
      process.stdout.write(`recorded ${PREFIX}${name} (${history.events?.length ?? 0} events)\n`);
    };

    await mkdir(OUTPUT_DIR, { recursive: true });
    await worker.runUntil(async () => {
      // A VM spawned, run and destroyed; then the tenant closes and the workflow completes.
      const a = tenant('rec3-spawn', { max_vms: 3, storage_quota_gb: 100 });
      await spawn(tenants, a, 'vm-spawn-1');
      await settledTo(a, 1);
      await destroy(tenants, a, 'vm-spawn-1');
      await settledTo(a, 0);
      await tenants.close(a, CONTEXT);
      expectStatuses(a, { 'vm-spawn-1': 'destroyed' });
      await save('spawn-destroy', a, [
        'activity:loadTenantForRebuild',
        'activity:bootVm',
        'activity:teardownVm',
        'activity:recordTenantDeleted',
        'WORKFLOW_EXECUTION_COMPLETED',
      ]);

      // Refusals (over max_vms, over storage), a stale quota ignored, a raised one admitting, a VM the fleet refuses.
      const b = tenant('rec3-quota', { max_vms: 1, storage_quota_gb: 8 });
      await spawn(tenants, b, 'vm-quota-1');
      await expectRefusal(spawn(tenants, b, 'vm-quota-2'), 'QuotaExceeded');
      await changeQuota(b, { max_vms: 2, storage_quota_gb: 8, version: 3 });
      await changeQuota(b, { max_vms: 9, storage_quota_gb: 90, version: 2 });
      await expectRefusal(spawn(tenants, b, 'vm-quota-2', 2), 'QuotaExceeded');
      failing.add('vm-quota-3');
      await changeQuota(b, { max_vms: 2, storage_quota_gb: 10, version: 4 });
      await spawn(tenants, b, 'vm-quota-3');
      await settledTo(b, 1);
      await expectRefusal(tenants.close(b, CONTEXT), 'TenantHasVms');
      await destroy(tenants, b, 'vm-quota-1');
      await settledTo(b, 0);
      await tenants.close(b, CONTEXT);
      expectStatuses(b, { 'vm-quota-1': 'destroyed', 'vm-quota-2': 'rejected', 'vm-quota-3': 'failed' });
      await save('over-quota-refusal', b, ['activity:failVm', 'activity:teardownVm', 'WORKFLOW_EXECUTION_UPDATE_COMPLETED', 'WORKFLOW_EXECUTION_COMPLETED']);

      // A destroy that arrives while its VM boots cancels the boot; a repeat of it is answered.
      const c = tenant('rec3-cancel', { max_vms: 3, storage_quota_gb: 100 });
      held.add('vm-cancel-1');
      await spawn(tenants, c, 'vm-cancel-1');
      await destroy(tenants, c, 'vm-cancel-1');
      await destroy(tenants, c, 'vm-cancel-1', { ...CONTEXT, request_id: 'recorded-repeat' });
      await settledTo(c, 0);
      held.delete('vm-cancel-1');
      await tenants.close(c, CONTEXT);
      expectStatuses(c, { 'vm-cancel-1': 'destroyed' });
      await save('cancel-on-destroy', c, ['ACTIVITY_TASK_CANCEL_REQUESTED', 'activity:teardownVm', 'WORKFLOW_EXECUTION_COMPLETED']);

      // Concurrent spawns, some past the quota: each decided in one step, no two taking the same room.
      const g = tenant('rec3-concurrent', { max_vms: 4, storage_quota_gb: 100 });
      await tenants.ensureStarted(g);
      await settledTo(g, 0);
      const burst = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => spawn(tenants, g, `vm-burst-${i}`)));
      check(burst.filter((r) => r.status === 'fulfilled').length === 4, 'expected 4 of 6 concurrent spawns admitted');
      await settledTo(g, 4);
      await save('concurrent-spawns', g, ['activity:bootVm']);

      // A run rebuilt from a Postgres holding one VM running (in the totals only), one provisioning
      // and one destroying (both resumed), and three requests still `requested` that the lost run may
      // have decided: one that fits and is asked again by its own spawn (decided by the handler), one
      // that fits and nobody asks about (decided by the run after the grace period, from its row), and
      // one that fits no more (30 GB over a 40 GB quota: lost, abandoned as admission_lost). Then a
      // new spawn.
      const d = tenant(
        'rec3-rebuild',
        { max_vms: 10, storage_quota_gb: 40 },
        {
          'vm-rebuild-up': { status: 'running' },
          'vm-rebuild-booting': { status: 'provisioning' },
          'vm-rebuild-going': { status: 'destroying' },
          'vm-rebuild-asked': { status: 'requested' },
          'vm-rebuild-forgotten': { status: 'requested' },
          'vm-rebuild-too-big': { status: 'requested', storage_gb: 30 },
        },
      );
      await tenants.ensureStarted(d);
      const asked = await spawn(tenants, d, 'vm-rebuild-asked');
      check(asked.status === 'provisioning', `the asked request should be admitted, got ${asked.status}`);
      const beforeGrace = await usage(d);
      check(beforeGrace.provisioning + beforeGrace.destroying > 0, 'the forgotten requests should still be pending before the grace period');
      await settledTo(d, 4, PENDING_GRACE_WAIT_MS);
      expectStatuses(d, {
        'vm-rebuild-asked': 'running',
        'vm-rebuild-forgotten': 'running',
        'vm-rebuild-too-big': 'failed',
        'vm-rebuild-booting': 'running',
        'vm-rebuild-going': 'destroyed',
      });
      await spawn(tenants, d, 'vm-rebuild-new');
      await settledTo(d, 5);
      await save('rebuild-from-postgres', d, [
        'activity:loadTenantForRebuild',
        'TIMER_STARTED',
        'TIMER_FIRED',
        'activity:readVmStatuses',
        'activity:abandonAdmission',
        'activity:teardownVm',
      ]);

      // A boot past the deadline it got at admission: failed and released.
      const e = tenant('rec3-deadline', { max_vms: 2, storage_quota_gb: 100 });
      held.add('vm-deadline-1');
      await spawn(deadlineTenants, e, 'vm-deadline-1');
      await settledTo(e, 0);
      held.delete('vm-deadline-1');
      expectStatuses(e, { 'vm-deadline-1': 'failed' });
      await save('boot-timeout', e, ['ACTIVITY_TASK_TIMED_OUT', 'activity:failVm']);

      // Continue-as-new after 3 updates, with a VM still booting carried over (with its boot deadline) and resumed.
      const f = tenant('rec3-continue-as-new', { max_vms: 3, storage_quota_gb: 100 });
      await spawn(canTenants, f, 'vm-can-1');
      await settledTo(f, 1);
      held.add('vm-can-2');
      await spawn(canTenants, f, 'vm-can-2');
      const firstRunId = (await client.workflow.getHandle(tenantWorkflowId(f)).describe()).runId;
      await destroy(canTenants, f, 'vm-can-1');
      await waitFor(async () => (await client.workflow.getHandle(tenantWorkflowId(f)).describe()).runId !== firstRunId, 'continue-as-new');
      held.delete('vm-can-2');
      await settledTo(f, 1);
      await destroy(canTenants, f, 'vm-can-1'); // a retry, answered from carried state
      await destroy(canTenants, f, 'vm-can-2');
      await settledTo(f, 0);
      await canTenants.close(f, CONTEXT);
      expectStatuses(f, { 'vm-can-1': 'destroyed', 'vm-can-2': 'destroyed' });
      await save('continue-as-new.run1', f, ['WORKFLOW_EXECUTION_CONTINUED_AS_NEW'], firstRunId);
      await save('continue-as-new.run2', f, ['activity:bootVm', 'WORKFLOW_EXECUTION_COMPLETED']);

      // A run continued from a state-version-2 run (what such a run hands over at its continue-as-new):
      // its VMs in flight resumed (one booting, one being destroyed), only settled ids remembered. A
      // state-version-2 run never carries an `admitting` VM: it continues only once every handler is done.
      const h = tenant(
        'rec3-from-v2',
        { max_vms: 5, storage_quota_gb: 100 },
        {
          'vm-v2-up': { status: 'running' },
          'vm-v2-booting': { status: 'provisioning' },
          'vm-v2-going': { status: 'destroying' },
          'vm-v2-old': { status: 'destroyed' },
        },
      );
      const v2Cause = { request_id: 'recorded-v2', actor_token_id: 'tok-recorded' };
      const carried: CarriedTenantStateV2 = {
        state_version: 2,
        quota: { ...fakeTenants.get(h)!.quota },
        closed: false,
        vms: 3,
        storage_gb: 3 * SHAPE.storage_gb,
        in_flight: [
          { vm_id: 'vm-v2-booting', storage_gb: SHAPE.storage_gb, phase: 'provisioning', cause: v2Cause },
          { vm_id: 'vm-v2-going', storage_gb: SHAPE.storage_gb, phase: 'destroying', cause: v2Cause },
        ],
        recent: [
          ['vm-v2-old', 'destroyed'],
          ['vm-v2-up', 'running'],
        ],
      };
      const input: TenantWorkflowInput = { tenant_id: h, carried };
      await client.workflow.start('tenantWorkflow', {
        args: [input],
        workflowId: tenantWorkflowId(h),
        taskQueue: TASK_QUEUE,
        typedSearchAttributes: [{ key: TENANT_ID_SEARCH_ATTRIBUTE, value: h }],
        memo: { tenant_id: h },
      });
      await settledTo(h, 2);
      const oldDestroy = await destroy(tenants, h, 'vm-v2-old', { ...CONTEXT, request_id: 'recorded-late-retry' });
      check(oldDestroy.status === 'destroyed', `a late destroy of a VM the v2 run settled should be answered destroyed, got ${oldDestroy.status}`);
      await spawn(tenants, h, 'vm-v2-new');
      await settledTo(h, 3);
      for (const vmId of ['vm-v2-up', 'vm-v2-booting', 'vm-v2-new']) await destroy(tenants, h, vmId);
      await settledTo(h, 0);
      await tenants.close(h, CONTEXT);
      expectStatuses(h, { 'vm-v2-up': 'destroyed', 'vm-v2-booting': 'destroyed', 'vm-v2-going': 'destroyed', 'vm-v2-new': 'destroyed' });
      await save('migrated-from-v2', h, ['activity:bootVm', 'activity:teardownVm', 'WORKFLOW_EXECUTION_COMPLETED']);
    });
  } finally {
    await workerConnection.close();
    await connection.close();
    await temporal.stop(10_000);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
