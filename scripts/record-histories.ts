/**
 * Records tenant-workflow histories for the replay test (test/workflows/tenant-workflow.replay.test.ts).
 *
 *   node --import tsx scripts/record-histories.ts [output-dir]
 *
 * Starts a throwaway Temporal dev server, runs the real tenant workflow on a worker, drives it
 * through the real workflow client (update-with-start, search attribute, memo) and saves each
 * scenario's history as JSON. The activities are in-memory stand-ins with the real signatures: a
 * history records only what activities returned, so Postgres, NATS and the fleet are not needed,
 * and a stand-in lets a scenario hold a VM in provisioning for as long as it needs.
 *
 * It records the current workflow's scenarios as `v2-*.json`. The histories without that prefix
 * were recorded by the version-1 workflow (before the tenant-state-v2 patch) and are kept as they
 * are: they prove that runs started by earlier code still replay. Add new files after an intended,
 * versioned change to the workflow; never re-record to make a failing replay pass.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { createActivities } from '../src/activities';
import { REPO_ROOT, ensureTemporalBinary } from '../src/devstack/temporal-binary';
import { startTemporalDevServer } from '../src/devstack/temporal-dev-server';
import type { RequestContext } from '../src/shared/request-context';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { usageQuery, type SpawnVmRequest, type TenantQuota, type VersionedQuota } from '../src/shared/tenant-workflow.messages';
import type { InFlightVm } from '../src/shared/tenant-workflow.state';
import { createTenantWorkflowClient } from '../src/temporal/tenant-workflow-client';
import { WORKFLOWS_PATH } from '../src/workers/workflow-bundle';

type Activities = ReturnType<typeof createActivities>;
type RecordedActivities = Pick<Activities, 'loadTenantTotals' | 'listInFlightVms' | 'recordSpawnAdmitted' | 'recordDestroyRequested' | 'recordTenantDeleted' | 'bootVm' | 'teardownVm' | 'failVm'>;

const OUTPUT_DIR = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'test/workflows/histories'));
const TASK_QUEUE = 'record-histories';
const CONTEXT: RequestContext = { request_id: 'recorded', actor_token_id: 'tok-recorded', actor_scope: 'service:tenant-admin', source_ip: '127.0.0.1', user_agent: 'record-histories' };
const SHAPE = { vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12', name: null };

/** What the stand-in Postgres and fleet hold for one tenant. */
interface FakeTenant {
  quota: VersionedQuota;
  totals: { vms: number; storage_gb: number };
  inFlight: InFlightVm[];
}

/**
 * In-memory stand-ins for the activities. A VM in `held` boots until released (heartbeating, so a
 * destroy can cancel it); one in `failing` is refused by the fleet.
 */
function fakeActivities(tenants: Map<string, FakeTenant>, held: Set<string>, failing: Set<string>): RecordedActivities {
  return {
    async loadTenantTotals({ tenant_id }) {
      const tenant = tenants.get(tenant_id);
      if (!tenant) throw new Error(`no tenant ${tenant_id}`);
      return { quota: tenant.quota, closed: false, ...tenant.totals };
    },
    async listInFlightVms({ tenant_id, after }) {
      const inFlight = after === null ? (tenants.get(tenant_id)?.inFlight ?? []) : [];
      return { in_flight: inFlight.map((vm) => ({ vm_id: vm.vm_id, storage_gb: vm.storage_gb, phase: vm.phase === 'destroying' ? 'destroying' : 'provisioning', created_at_ms: Date.now() })), undecided: [], next_after: null };
    },
    async recordSpawnAdmitted() {
      // A real admission takes a Postgres transaction: long enough for others to arrive meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 10));
      return { outcome: 'recorded' };
    },
    async recordDestroyRequested() {
      return { outcome: 'recorded', storage_gb: SHAPE.storage_gb };
    },
    async recordTenantDeleted() {
      return { outcome: 'deleted' };
    },
    async bootVm({ vm_id }) {
      const context = Context.current();
      while (held.has(vm_id)) {
        context.heartbeat();
        await context.sleep(100);
      }
      if (failing.has(vm_id)) return { status: 'failed', failure_reason: 'image_refused' };
      return { status: 'running', failure_reason: null };
    },
    async teardownVm() {
      return { released: true, storage_gb: SHAPE.storage_gb };
    },
    async failVm() {
      return { released: true };
    },
  };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function main(): Promise<void> {
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

    const tenant = (id: string, quota: TenantQuota, totals = { vms: 0, storage_gb: 0 }, inFlight: InFlightVm[] = []) => {
      fakeTenants.set(id, { quota: { ...quota, version: 1 }, totals, inFlight });
      return id;
    };
    const spawnRequest = (tenantId: string, vmId: string): SpawnVmRequest => ({ vm_id: vmId, shape: SHAPE, created_at: '2026-11-27T12:00:00.000Z', context: CONTEXT, quota: fakeTenants.get(tenantId)!.quota });
    const usage = (tenantId: string) => client.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
    const settledTo = (tenantId: string, vms: number) => waitFor(async () => {
      const u = await usage(tenantId);
      return u.vms === vms && u.provisioning === 0 && u.destroying === 0;
    }, `${tenantId} to settle at ${vms} VMs`);
    const expectRefusal = async (work: Promise<unknown>, type: string) => {
      const error = await work.then(() => null, (e: unknown) => e as Error & { cause?: { type?: string } });
      if (error?.cause?.type !== type) throw new Error(`expected a ${type} refusal, got ${String(error)}`);
    };
    const save = async (name: string, tenantId: string, runId?: string) => {
      const history = await client.workflow.getHandle(tenantWorkflowId(tenantId), runId).fetchHistory();
      // The SDK's historyToJSON trips over two protobufjs copies in this install ("type must be a
      // Type"); the message's own toJSON gives the same camelCase JSON, which historyFromJSON reads.
      const json = proto.api.history.v1.History.fromObject(history).toJSON();
      await writeFile(path.join(OUTPUT_DIR, `${name}.json`), JSON.stringify(json, null, 1) + '\n');
      process.stdout.write(`recorded ${name} (${history.events?.length ?? 0} events)\n`);
    };

    await mkdir(OUTPUT_DIR, { recursive: true });
    await worker.runUntil(async () => {
      // A VM spawned, run and destroyed; then the tenant closes and the workflow completes.
      const a = tenant('rec2-spawn', { max_vms: 3, storage_quota_gb: 100 });
      await tenants.spawn(a, spawnRequest(a, 'vm-spawn-1'));
      await settledTo(a, 1);
      await tenants.destroy(a, 'vm-spawn-1', CONTEXT);
      await settledTo(a, 0);
      await tenants.close(a, CONTEXT);
      await save('v2-spawn-destroy', a);

      // Refusals (over max_vms, over storage), a stale quota ignored, a raised one admitting, a VM the fleet refuses.
      const b = tenant('rec2-quota', { max_vms: 1, storage_quota_gb: 8 });
      await tenants.spawn(b, spawnRequest(b, 'vm-quota-1'));
      await expectRefusal(tenants.spawn(b, spawnRequest(b, 'vm-quota-2')), 'QuotaExceeded');
      await tenants.changeQuota(b, { max_vms: 2, storage_quota_gb: 8, version: 3 }, CONTEXT);
      await tenants.changeQuota(b, { max_vms: 9, storage_quota_gb: 90, version: 2 }, CONTEXT);
      await expectRefusal(tenants.spawn(b, spawnRequest(b, 'vm-quota-2')), 'QuotaExceeded');
      failing.add('vm-quota-3');
      await tenants.changeQuota(b, { max_vms: 2, storage_quota_gb: 10, version: 4 }, CONTEXT);
      await tenants.spawn(b, spawnRequest(b, 'vm-quota-3'));
      await settledTo(b, 1);
      await expectRefusal(tenants.close(b, CONTEXT), 'TenantHasVms');
      await tenants.destroy(b, 'vm-quota-1', CONTEXT);
      await settledTo(b, 0);
      await tenants.close(b, CONTEXT);
      await save('v2-over-quota-refusal', b);

      // A destroy that arrives while its VM boots cancels the boot; a repeat of it is answered.
      const c = tenant('rec2-cancel', { max_vms: 3, storage_quota_gb: 100 });
      held.add('vm-cancel-1');
      await tenants.spawn(c, spawnRequest(c, 'vm-cancel-1'));
      await tenants.destroy(c, 'vm-cancel-1', CONTEXT);
      await tenants.destroy(c, 'vm-cancel-1', { ...CONTEXT, request_id: 'recorded-repeat' });
      await settledTo(c, 0);
      held.delete('vm-cancel-1');
      await tenants.close(c, CONTEXT);
      await save('v2-cancel-on-destroy', c);

      // Concurrent spawns, some past the quota: admissions recorded one at a time.
      const g = tenant('rec2-concurrent', { max_vms: 4, storage_quota_gb: 100 });
      await tenants.ensureStarted(g);
      await settledTo(g, 0);
      const burst = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => tenants.spawn(g, spawnRequest(g, `vm-burst-${i}`))));
      if (burst.filter((r) => r.status === 'fulfilled').length !== 4) throw new Error('expected 4 of 6 concurrent spawns admitted');
      await settledTo(g, 4);
      await save('v2-concurrent-spawns', g);

      // A run rebuilt from a Postgres holding VMs: one running (totals only), one still provisioning
      // and one being destroyed, both resumed; then a new spawn.
      const cause = { request_id: 'recovery', actor_token_id: null };
      const d = tenant('rec2-rebuild', { max_vms: 5, storage_quota_gb: 100 }, { vms: 3, storage_gb: 15 }, [
        { vm_id: 'vm-rebuild-booting', storage_gb: 5, phase: 'provisioning', cause },
        { vm_id: 'vm-rebuild-going', storage_gb: 5, phase: 'destroying', cause },
      ]);
      await tenants.ensureStarted(d);
      await settledTo(d, 2);
      await tenants.spawn(d, spawnRequest(d, 'vm-rebuild-new'));
      await settledTo(d, 3);
      await save('v2-rebuild-from-postgres', d);

      // A boot past its deadline: failed and released.
      const e = tenant('rec2-deadline', { max_vms: 2, storage_quota_gb: 100 });
      held.add('vm-deadline-1');
      await deadlineTenants.spawn(e, spawnRequest(e, 'vm-deadline-1'));
      await settledTo(e, 0);
      held.delete('vm-deadline-1');
      await save('v2-boot-timeout', e);

      // Continue-as-new after 3 updates, with a VM still booting carried over and resumed.
      const f = tenant('rec2-continue-as-new', { max_vms: 3, storage_quota_gb: 100 });
      await canTenants.spawn(f, spawnRequest(f, 'vm-can-1'));
      await settledTo(f, 1);
      held.add('vm-can-2');
      await canTenants.spawn(f, spawnRequest(f, 'vm-can-2'));
      const firstRunId = (await client.workflow.getHandle(tenantWorkflowId(f)).describe()).runId;
      await canTenants.destroy(f, 'vm-can-1', CONTEXT);
      await waitFor(async () => (await client.workflow.getHandle(tenantWorkflowId(f)).describe()).runId !== firstRunId, 'continue-as-new');
      held.delete('vm-can-2');
      await settledTo(f, 1);
      await canTenants.destroy(f, 'vm-can-1', CONTEXT); // a retry, answered from carried state
      await canTenants.destroy(f, 'vm-can-2', CONTEXT);
      await settledTo(f, 0);
      await canTenants.close(f, CONTEXT);
      await save('v2-continue-as-new.run1', f, firstRunId);
      await save('v2-continue-as-new.run2', f);
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
