import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { temporal as proto } from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { createActivities } from '../../src/activities';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { CURRENT_STATE_VERSION } from '../../src/shared/tenant-workflow.versions';
import { listTenantRuns, needsUpgrade, upgradeTenantRuns, type TenantRunVersion } from '../../src/temporal/tenant-workflow-upgrade';
import { eventually } from '../helpers/eventually';
import { testEnv, uniqueName } from '../helpers/test-env';
import { testBundle } from '../helpers/workflow-bundle';

/**
 * The upgrade procedure of docs/upgrades.md, live: runs started by the version-1 and version-2 code
 * (test bundles of the frozen code as those workers ran it), then a worker of the current code; the
 * procedure lists them as needing frozen code, signals them to continue as new (twice: a first new
 * run still carries the state the older code handed it), and leaves every run on the current
 * code with its quota carried over. RECORD_UPGRADE_HISTORIES=1 saves the signalled runs' histories
 * for the replay test (upgrade-*.json).
 */
type Activities = ReturnType<typeof createActivities>;

const QUOTA = { max_vms: 7, storage_quota_gb: 70 };
const HISTORIES_DIR = path.join(__dirname, 'histories');

/** Activities of a tenant with no VMs, under every name the three code versions use to load it. */
function emptyTenantActivities(): Partial<Activities> {
  const totals = { quota: { ...QUOTA, version: 1 }, closed: false, vms: 0, storage_gb: 0 };
  return {
    loadTenantSnapshot: async () => ({ quota: QUOTA, closed: false, vms: [], settled: [] }),
    loadTenantTotals: async () => totals,
    listInFlightVms: async () => ({ in_flight: [], undecided: [], next_after: null }),
    loadTenantForRebuild: async ({ epoch }) => ({ totals, admission_epoch: epoch, in_flight: [], undecided: [] }),
    readAdmissionEpoch: async () => 1,
  };
}

jest.setTimeout(180_000);

describe('tenant workflow upgrade procedure', () => {
  const env = testEnv();
  const taskQueue = uniqueName('upgrade');
  const tenants = { v1: uniqueName('up-v1'), v2: uniqueName('up-v2'), current: uniqueName('up-v3') };
  let connection: Connection;
  let workerConnection: NativeConnection;
  let client: Client;

  beforeAll(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    connection = await Connection.connect({ address: env.temporalAddress });
    workerConnection = await NativeConnection.connect({ address: env.temporalAddress });
    client = new Client({ connection, namespace: env.temporalNamespace });
  });
  afterAll(async () => {
    for (const tenant of Object.values(tenants))
      await client.workflow
        .getHandle(tenantWorkflowId(tenant))
        .terminate('test over')
        .catch(() => undefined);
    await workerConnection.close();
    await connection.close();
  });

  /** Runs `work` with a worker of the code in `workflowBundle` on this test's task queue. */
  async function withWorker(workflowBundle: { code: string } | { codePath: string }, work: () => Promise<void>): Promise<void> {
    const worker = await Worker.create({
      connection: workerConnection,
      namespace: env.temporalNamespace,
      taskQueue,
      workflowBundle,
      activities: emptyTenantActivities(),
    });
    await worker.runUntil(work);
  }
  async function bundleOf(file: string): Promise<{ code: string }> {
    return bundleWorkflowCode({ workflowsPath: require.resolve(file), logger: new DefaultLogger('WARN') });
  }
  /** Starts the tenant's workflow and waits until it has loaded its state. */
  async function startTenant(tenantId: string): Promise<string> {
    const handle = await client.workflow.start('tenantWorkflow', { workflowId: tenantWorkflowId(tenantId), taskQueue, args: [{ tenant_id: tenantId }] });
    await eventually(async () => (await handle.query(usageQuery).catch(() => null))?.max_vms === QUOTA.max_vms, 30_000, `${tenantId} loaded`);
    return handle.firstExecutionRunId;
  }
  const runOf = (runs: TenantRunVersion[], tenantId: string) => runs.find((run) => run.workflowId === tenantWorkflowId(tenantId));

  test('when runs of the version-1 and version-2 code are open, then the procedure moves each to the current code with its state, and a second pass finds none', async () => {
    const firstRuns: Record<string, string> = {};
    await withWorker(await bundleOf('./support/v1-era.workflows'), async () => {
      firstRuns.v1 = await startTenant(tenants.v1);
    });
    await withWorker(await bundleOf('./support/v2-era.workflows'), async () => {
      firstRuns.v2 = await startTenant(tenants.v2);
    });

    await withWorker(await testBundle(), async () => {
      firstRuns.current = await startTenant(tenants.current);
      // What a dry run lists: the two runs on frozen code, by their patch markers, and not the current one.
      const listed = await eventually(
        async () => {
          const runs = await listTenantRuns(client, taskQueue);
          return runs.length === 3 && runs.every((run) => run.patches !== null) && runs;
        },
        30_000,
        'the three runs listed',
      );
      expect(listed.map((run) => run.workflowId).sort()).toEqual(Object.values(tenants).map(tenantWorkflowId).sort());
      expect(runOf(listed, tenants.v1)).toMatchObject({ runId: firstRuns.v1, patches: [], carriedStateVersion: null });
      expect(runOf(listed, tenants.v2)).toMatchObject({ runId: firstRuns.v2, patches: ['tenant-state-v2'], carriedStateVersion: null });
      expect(runOf(listed, tenants.current)).toMatchObject({ patches: ['tenant-state-v2', 'admission-v3'], carriedStateVersion: null });
      const dryRun = await upgradeTenantRuns(client, taskQueue, { dryRun: true });
      expect(dryRun.remaining.map((run) => run.workflowId).sort()).toEqual([tenantWorkflowId(tenants.v1), tenantWorkflowId(tenants.v2)].sort());

      const report = await upgradeTenantRuns(client, taskQueue, { waitMs: 30_000 });
      expect(report.remaining).toEqual([]);
      // Round 1: both frozen runs; round 2: their next runs, current code on the state older code handed them; round 3: none.
      const frozen = [tenantWorkflowId(tenants.v1), tenantWorkflowId(tenants.v2)].sort();
      expect(report.rounds.map((round) => round.map((run) => run.workflowId).sort())).toEqual([frozen, frozen, []]);
      const converted = { v1: runOf(report.rounds[1]!, tenants.v1)!, v2: runOf(report.rounds[1]!, tenants.v2)! };
      // The next runs carry the older states; listed right after their start, a run's first task may not
      // have run yet (no patch markers to read), else it ran the current code.
      expect(converted.v1.carriedStateVersion).toBe(1);
      expect(converted.v2.carriedStateVersion).toBe(2);
      for (const run of [converted.v1, converted.v2]) expect([null, ['tenant-state-v2', 'admission-v3']]).toContainEqual(run.patches);

      const after = await listTenantRuns(client, taskQueue);
      expect(after.filter(needsUpgrade)).toEqual([]);
      expect(runOf(after, tenants.v1)).toMatchObject({ carriedStateVersion: CURRENT_STATE_VERSION });
      expect(runOf(after, tenants.v2)).toMatchObject({ carriedStateVersion: CURRENT_STATE_VERSION });
      // The current run was not touched; the others kept their tenant's quota through the conversions.
      expect(runOf(after, tenants.current)!.runId).toBe(firstRuns.current);
      for (const tenant of [tenants.v1, tenants.v2]) {
        expect(await client.workflow.getHandle(tenantWorkflowId(tenant)).query(usageQuery)).toMatchObject({
          max_vms: QUOTA.max_vms,
          storage_quota_gb: QUOTA.storage_quota_gb,
        });
      }

      if (process.env.RECORD_UPGRADE_HISTORIES === '1') {
        const save = async (name: string, tenantId: string, runId: string) => {
          const history = await client.workflow.getHandle(tenantWorkflowId(tenantId), runId).fetchHistory();
          await writeFile(path.join(HISTORIES_DIR, name), JSON.stringify(proto.api.history.v1.History.fromObject(history).toJSON(), null, 1) + '\n', {
            flag: 'wx',
          });
        };
        await save('upgrade-v1-signalled.json', tenants.v1, firstRuns.v1!);
        await save('upgrade-v2-signalled.json', tenants.v2, firstRuns.v2!);
        await save('upgrade-v3-from-v1-signalled.json', tenants.v1, converted.v1.runId);
        await save('upgrade-v3-from-v2-signalled.json', tenants.v2, converted.v2.runId);
      }
    });
  });
});
