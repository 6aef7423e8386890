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
 * Re-record after an intended, versioned change to the workflow; never to make a failing replay pass.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { createActivities } from '../src/activities';
import { REPO_ROOT, ensureTemporalBinary } from '../src/devstack/temporal-binary';
import { startTemporalDevServer } from '../src/devstack/temporal-dev-server';
import type { RequestContext } from '../src/shared/request-context';
import { tenantWorkflowId } from '../src/shared/tenant-id';
import { usageQuery, type SpawnVmRequest, type TenantQuota } from '../src/shared/tenant-workflow.messages';
import type { ProvisionOutcome, TenantSnapshot } from '../src/shared/legacy/tenant-v1.state';
import { createTenantWorkflowClient } from '../src/temporal/tenant-workflow-client';
import { WORKFLOWS_PATH } from '../src/workers/workflow-bundle';

type Activities = ReturnType<typeof createActivities>;

const OUTPUT_DIR = path.resolve(process.argv[2] ?? path.join(REPO_ROOT, 'test/workflows/histories'));
const TASK_QUEUE = 'record-histories';
const CONTEXT: RequestContext = { request_id: 'recorded', actor_token_id: 'tok-recorded', actor_scope: 'service:tenant-admin', source_ip: '127.0.0.1', user_agent: 'record-histories' };
const SHAPE = { vcpus: 1, memory_mb: 512, storage_gb: 5, image: 'debian-12', name: null };

/** In-memory stand-ins for the activities; a gated VM stays provisioning until released. */
function fakeActivities(quotas: Map<string, TenantQuota>, gates: Map<string, Promise<void>>, failing: Set<string>) {
  const activities: Pick<Activities, 'loadTenantSnapshot' | 'provisionVm' | 'destroyVm'> = {
    async loadTenantSnapshot({ tenant_id }): Promise<TenantSnapshot> {
      const quota = quotas.get(tenant_id);
      if (!quota) throw new Error(`no tenant ${tenant_id}`);
      return { quota, closed: false, vms: [], settled: [] };
    },
    async provisionVm({ request }): Promise<ProvisionOutcome> {
      await gates.get(request.vm_id);
      if (failing.has(request.vm_id)) return { status: 'failed', failure_reason: 'image_refused' };
      return { status: 'running', failure_reason: null };
    },
    async destroyVm(): Promise<void> {},
  };
  return activities;
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
    const quotas = new Map<string, TenantQuota>();
    const gates = new Map<string, Promise<void>>();
    const failing = new Set<string>();
    const worker = await Worker.create({ connection: workerConnection, namespace: temporal.namespace, taskQueue: TASK_QUEUE, workflowsPath: WORKFLOWS_PATH, activities: fakeActivities(quotas, gates, failing) });
    const tenants = createTenantWorkflowClient({ client, taskQueue: TASK_QUEUE });
    const canTenants = createTenantWorkflowClient({ client, taskQueue: TASK_QUEUE, continueAsNewAfterUpdates: 3 });

    const spawnRequest = (vmId: string): SpawnVmRequest => ({ vm_id: vmId, shape: SHAPE, created_at: '2026-11-23T12:00:00.000Z', context: CONTEXT });
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
    const tenant = (id: string, quota: TenantQuota) => {
      quotas.set(id, quota);
      return id;
    };

    await mkdir(OUTPUT_DIR, { recursive: true });
    await worker.runUntil(async () => {
      // A VM spawned, run and destroyed; then the tenant closes and the workflow completes.
      const a = tenant('rec-spawn', { max_vms: 3, storage_quota_gb: 100 });
      await tenants.ensureStarted(a, quotas.get(a)!);
      await tenants.spawn(a, spawnRequest('vm-spawn-1'));
      await settledTo(a, 1);
      await tenants.destroy(a, 'vm-spawn-1', CONTEXT);
      await settledTo(a, 0);
      await tenants.close(a, CONTEXT);
      await save('spawn-destroy', a);

      // Refusals: over max_vms, over storage, then a raised quota admits the spawn; a VM the fleet refuses fails.
      const b = tenant('rec-quota', { max_vms: 1, storage_quota_gb: 8 });
      await tenants.spawn(b, spawnRequest('vm-quota-1'));
      await expectRefusal(tenants.spawn(b, spawnRequest('vm-quota-2')), 'QuotaExceeded');
      await tenants.changeQuota(b, { max_vms: 2, storage_quota_gb: 8 }, CONTEXT);
      await expectRefusal(tenants.spawn(b, spawnRequest('vm-quota-2')), 'QuotaExceeded');
      failing.add('vm-quota-3');
      await tenants.changeQuota(b, { max_vms: 2, storage_quota_gb: 10 }, CONTEXT);
      await tenants.spawn(b, spawnRequest('vm-quota-3'));
      await settledTo(b, 1);
      await expectRefusal(tenants.close(b, CONTEXT), 'TenantHasVms');
      await tenants.destroy(b, 'vm-quota-1', CONTEXT);
      await settledTo(b, 0);
      await tenants.close(b, CONTEXT);
      await save('over-quota-refusal', b);

      // A destroy that arrives while its VM is still provisioning, and a repeat of it.
      const c = tenant('rec-destroy-early', { max_vms: 3, storage_quota_gb: 100 });
      let release!: () => void;
      gates.set('vm-early-1', new Promise<void>((resolve) => (release = resolve)));
      await tenants.spawn(c, spawnRequest('vm-early-1'));
      await tenants.destroy(c, 'vm-early-1', CONTEXT);
      await tenants.destroy(c, 'vm-early-1', { ...CONTEXT, request_id: 'recorded-repeat' });
      release();
      await settledTo(c, 0);
      await tenants.close(c, CONTEXT);
      await save('destroy-while-provisioning', c);

      // Continue-as-new after 3 updates, with a VM still running and one retried spawn carried over.
      const d = tenant('rec-continue-as-new', { max_vms: 3, storage_quota_gb: 100 });
      await canTenants.spawn(d, spawnRequest('vm-can-1'));
      await canTenants.spawn(d, spawnRequest('vm-can-2'));
      await settledTo(d, 2);
      const firstRunId = (await client.workflow.getHandle(tenantWorkflowId(d)).describe()).runId;
      await canTenants.destroy(d, 'vm-can-2', CONTEXT);
      await waitFor(async () => (await client.workflow.getHandle(tenantWorkflowId(d)).describe()).runId !== firstRunId, 'continue-as-new');
      await settledTo(d, 1);
      await canTenants.spawn(d, spawnRequest('vm-can-1')); // a retry, answered from carried state
      await canTenants.destroy(d, 'vm-can-1', CONTEXT);
      await settledTo(d, 0);
      await canTenants.close(d, CONTEXT);
      await save('continue-as-new.run1', d, firstRunId);
      await save('continue-as-new.run2', d);
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
