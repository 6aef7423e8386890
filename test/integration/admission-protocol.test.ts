import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal as proto } from '@temporalio/proto';
import type { TenantSnapshot as LegacyTenantSnapshot } from '../../src/shared/legacy/tenant-v1.state';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery, type SpawnVmRequest } from '../../src/shared/tenant-workflow.messages';
import { TENANT_ID_SEARCH_ATTRIBUTE } from '../../src/temporal/search-attributes';
import { replayLiveRuns } from '../helpers/replay-live';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { configureFleet } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const EventType = proto.api.enums.v1.EventType;

/** The admission protocol: Postgres holds every VM before its 202, and a rebuild never counts fewer. */
describe('admission protocol', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const setFleet = (controls: SimControlsPatch) => configureFleet(stack.fleet.url, controls);
  const handle = (tenantId: string) => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId));
  const rowOf = (vmId: string) => stack.db.selectFrom('vms').selectAll().where('vm_id', '=', vmId).executeTakeFirst();
  /** Rows holding quota (docs/admission-protocol.md): `requested` and `rejected` rows hold none. */
  const heldInPostgres = async (tenantId: string) =>
    (
      await stack.db
        .selectFrom('vms')
        .select('vm_id')
        .where('tenant_id', '=', tenantId)
        .where('status', 'in', ['provisioning', 'running', 'destroying'])
        .execute()
    ).length;

  test('when a burst passes the quota, then every 202 names a VM Postgres already holds, the rest are 429 with a rejected row that holds no quota, and refused spawns leave no trace in the history', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 8 });
    // The run has loaded the tenant (its start at creation rebuilt it from Postgres).
    await eventually(
      async () =>
        (
          await handle(tenantId)
            .query(usageQuery)
            .catch(() => null)
        )?.max_vms === 8,
      20_000,
      'workflow loaded',
    );
    await setFleet({ boot_ms: 5000 });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const res = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
          // Read at the moment of the answer, before anything else can write it.
          const row = res.status === 202 ? await rowOf(res.body.vm_id) : undefined;
          return { status: res.status, row };
        }),
      );
      const admitted = answers.filter((a) => a.status === 202);
      expect(admitted).toHaveLength(8);
      // Recorded before the decision; the boot confirms it a moment after the answer.
      for (const { row } of admitted) expect(['requested', 'provisioning', 'running']).toContain(row?.status);
      expect(answers.filter((a) => a.status === 429)).toHaveLength(12);
      expect(await heldInPostgres(tenantId)).toBe(8);
      // Each refused request was recorded before the decision, and ends rejected: a row, but no quota.
      const rows = await stack.db.selectFrom('vms').select(['vm_id', 'status', 'failure_reason']).where('tenant_id', '=', tenantId).execute();
      const admittedIds = new Set(admitted.map((a) => a.row!.vm_id));
      const refusedRows = rows.filter((row) => !admittedIds.has(row.vm_id));
      expect(rows).toHaveLength(20);
      expect(refusedRows.map((row) => `${row.status} ${row.failure_reason}`)).toEqual(Array.from({ length: 12 }, () => 'rejected quota_exceeded'));

      const history = await handle(tenantId).fetchHistory();
      const accepted = (history.events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED);
      const spawns = accepted.map((e) => e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input).filter((input) => input?.name === 'spawnVm');
      // The refusals were rejected by the validator: never accepted, never in the history. The
      // accepted spawns are exactly the admitted VMs.
      const spawnedIds = spawns.map((input) => defaultPayloadConverter.fromPayload<SpawnVmRequest>(input!.args!.payloads![0]!).vm_id);
      expect(new Set(spawnedIds)).toEqual(admittedIds);
      expect(spawnedIds).toHaveLength(8);
      // Concurrent admissions replay as they ran (a worker that lost its cache replays them).
      expect(await replayLiveRuns(stack.temporal, tenantWorkflowId(tenantId))).toBeGreaterThan(0);
    } finally {
      await setFleet({ boot_ms: 50 });
    }
  }, 60_000);

  test('when the workflow is lost while VMs boot, then the rebuilt run counts every one of them at once and finishes their boots', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 10 });
    await setFleet({ boot_ms: 3000 });
    try {
      const spawned = await Promise.all(Array.from({ length: 5 }, () => stack.request('POST', '/v1/vms', { token, body: SMALL_VM })));
      expect(spawned.map((s) => s.status)).toEqual([202, 202, 202, 202, 202]);
      await handle(tenantId).terminate('test: lost while VMs boot');

      const next = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      expect(next.status).toBe(202);
      const rebuilt = await handle(tenantId).query(usageQuery);
      expect(rebuilt.vms).toBe(6);
      // The sixth row holds quota once its boot confirms it, a moment after the answer.
      await eventually(async () => (await heldInPostgres(tenantId)) === rebuilt.vms, 10_000, 'Postgres to hold what the rebuilt run counts');

      for (const vm of [...spawned, next]) {
        await eventually(async () => (await rowOf(vm.body.vm_id))?.status === 'running', 30_000, `VM ${vm.body.vm_id} running`);
      }
      expect(await handle(tenantId).query(usageQuery)).toMatchObject({ vms: 6, provisioning: 0, destroying: 0 });
    } finally {
      await setFleet({ boot_ms: 50 });
    }
  }, 60_000);

  test('when a version-1 run continues as new into the current code, then its carried VMs keep their quota and its booting VM is finished', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 3, storage_quota_gb: 100 });
    await eventually(
      async () =>
        (
          await handle(tenantId)
            .describe()
            .catch(() => null)
        )?.status.name === 'RUNNING',
      20_000,
      'workflow running',
    );
    await handle(tenantId).terminate('test: replaced by a version-1 continuation');
    // What a version-1 run wrote to Postgres and carried: one VM running, one still booting.
    const context = { request_id: 'v1', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null };
    const vm = (vmId: string, phase: 'running' | 'provisioning') => ({
      vm_id: vmId,
      storage_gb: 5,
      phase,
      spawn: { vm_id: vmId, shape: { ...SMALL_VM, name: null }, created_at: new Date().toISOString(), context },
      destroy: null,
    });
    const running = randomUUID();
    const booting = randomUUID();
    for (const [vmId, status] of [
      [running, 'running'],
      [booting, 'provisioning'],
    ] as const) {
      await stack.db
        .insertInto('vms')
        .values({ vm_id: vmId, tenant_id: tenantId, ...SMALL_VM, name: null, status, created_at: new Date(), updated_at: new Date() })
        .execute();
    }
    const carried: LegacyTenantSnapshot = {
      quota: { max_vms: 3, storage_quota_gb: 100 },
      closed: false,
      vms: [vm(running, 'running'), vm(booting, 'provisioning')],
      settled: [],
    };
    await stack.temporal.workflow.start('tenantWorkflow', {
      workflowId: tenantWorkflowId(tenantId),
      taskQueue: stack.config.temporalTaskQueue,
      args: [{ tenant_id: tenantId, carried }],
      typedSearchAttributes: [{ key: TENANT_ID_SEARCH_ATTRIBUTE, value: tenantId }],
    });

    await eventually(async () => (await rowOf(booting))?.status === 'running', 30_000, 'the carried booting VM running');
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ vms: 2, storage_gb: 10, provisioning: 0 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).body).toMatchObject({ code: 'quota_exceeded', in_use: 3 });
  }, 60_000);
});
