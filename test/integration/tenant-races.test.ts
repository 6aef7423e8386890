import { randomUUID } from 'node:crypto';
import { failureType } from '../../src/shared/workflow-failures';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery } from '../../src/shared/tenant-workflow.messages';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const CONTEXT = { request_id: 'test', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null };

/** Deletion and quota changes racing the tenant's own requests. */
describe('tenant deletion and quota changes under concurrency', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  const handle = (tenantId: string, runId?: string) => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId), runId);
  const runsOf = async (tenantId: string) => {
    const runs: string[] = [];
    for await (const execution of stack.temporal.workflow.list({ query: `WorkflowId="${tenantWorkflowId(tenantId)}"` })) runs.push(execution.runId);
    return runs;
  };
  const storedTenant = (tenantId: string) => stack.db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();

  test('when spawns race a delete, then either the delete is refused or no VM of the tenant holds quota: a VM never outlives its tenant, and spawns refused for the closed tenant are rejected', async () => {
    const outcomes: number[] = [];
    for (let round = 0; round < 6; round++) {
      const { tenantId, token } = await createTenant(stack, { max_vms: 50 });
      // The delete goes out between the spawns, so some reach the workflow before it and some after.
      const spawn = () => stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      const before = Array.from({ length: 6 }, spawn);
      const deletion = stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken });
      const after = Array.from({ length: 6 }, spawn);
      const answers = await Promise.all([...before, ...after]);
      const deleted = await deletion;
      outcomes.push(deleted.status);
      for (const answer of answers) expect([202, 401, 404]).toContain(answer.status);
      // An admitted spawn's row is confirmed by its boot a moment after the 202.
      await eventually(
        async () =>
          (await stack.db.selectFrom('vms').select('vm_id').where('tenant_id', '=', tenantId).where('status', '=', 'requested').execute()).length === 0
            ? true
            : undefined,
        30_000,
        'no row left requested',
      );
      const rows = await stack.db.selectFrom('vms').select(['vm_id', 'status', 'failure_reason']).where('tenant_id', '=', tenantId).execute();
      // Every request is answered, so none is left undecided: a row either holds quota (an admitted
      // spawn) or was refused because the tenant was closing or closed (recorded before the refusal,
      // answered 404), and holds none.
      const holding = rows.filter((row) => ['provisioning', 'running', 'destroying'].includes(row.status));
      const refused = rows.filter((row) => !holding.includes(row));
      expect(refused.map((row) => `${row.status} ${row.failure_reason}`)).toEqual(refused.map(() => 'rejected tenant_closed'));
      expect(refused.length).toBeLessThanOrEqual(answers.filter((a) => a.status === 404).length);
      if (deleted.status === 200) {
        expect((await storedTenant(tenantId)).deleted_at).not.toBeNull();
        expect(holding).toEqual([]);
        expect(answers.filter((a) => a.status === 202)).toEqual([]);
      } else {
        expect(deleted.status).toBe(409);
        expect(deleted.body.code).toBe('tenant_has_vms');
        expect(holding.length).toBe(answers.filter((a) => a.status === 202).length);
      }
    }
    process.stdout.write(`delete outcomes over the rounds: ${outcomes.join(', ')}\n`);
  }, 120_000);

  test("when a request reaches a deleted tenant's workflow late, then it is refused TenantClosed and no new run starts", async () => {
    const { tenantId } = await createTenant(stack);
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
    expect((await stack.request('DELETE', `/v1/tenants/${tenantId}`, { token: stack.adminToken })).status).toBe(200);
    const closed = await eventually(async () => {
      const described = await handle(tenantId).describe();
      return described.status.name === 'COMPLETED' ? described : undefined;
    });
    const runsBefore = await runsOf(tenantId);

    // As a request would that passed authentication a moment before the delete.
    const late = await stack.gateway
      .spawn(tenantId, { vm_id: randomUUID(), shape: { ...SMALL_VM, name: null }, created_at: new Date().toISOString(), context: CONTEXT })
      .catch((e: unknown) => e);
    expect(failureType(late)).toBe('TenantClosed');
    const destroyLate = await stack.gateway.destroy(tenantId, randomUUID(), CONTEXT, 1).catch((e: unknown) => e);
    expect(failureType(destroyLate)).toBe('TenantClosed');

    const after = await handle(tenantId).describe();
    expect({ runId: after.runId, status: after.status.name }).toEqual({ runId: closed.runId, status: 'COMPLETED' });
    expect(await runsOf(tenantId)).toEqual(runsBefore);
    // The deletion was recorded once, by the workflow.
    const entries = await stack.db
      .selectFrom('audit_events')
      .select('event_type')
      .where('tenant_id', '=', tenantId)
      .where('event_type', '=', 'TENANT_DELETED')
      .execute();
    expect(entries).toHaveLength(1);
  }, 60_000);

  test('when two quota changes race, then the workflow ends on the quota and version Postgres holds', async () => {
    for (let round = 0; round < 4; round++) {
      const { tenantId, token } = await createTenant(stack, { max_vms: 2 });
      expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202); // the workflow is running
      const [a, b] = await Promise.all([
        stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 3 } }),
        stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 7 } }),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const stored = await storedTenant(tenantId);
      const usage = await handle(tenantId).query(usageQuery);
      expect({ max_vms: usage.max_vms, version: usage.quota_version }).toEqual({ max_vms: stored.max_vms, version: stored.quota_version });
    }
  }, 60_000);

  test('when a quota change is committed but never reaches the workflow (the API died in between), then the next spawn carries it and is judged by it', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    await stack.db
      .updateTable('tenants')
      .set((eb) => ({ max_vms: 1, quota_version: eb('quota_version', '+', 1) }))
      .where('tenant_id', '=', tenantId)
      .execute();
    const refused = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: 1, in_use: 1 });
    const stored = await storedTenant(tenantId);
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ max_vms: 1, quota_version: stored.quota_version });
  });

  test('when quota changes reach the workflow in the wrong order, then the older one is ignored', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 2 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    const { quota_version: version } = await storedTenant(tenantId);
    await stack.gateway.changeQuota(tenantId, { max_vms: 9, storage_quota_gb: 100, version: version + 2 }, CONTEXT);
    await stack.gateway.changeQuota(tenantId, { max_vms: 1, storage_quota_gb: 100, version: version + 1 }, CONTEXT);
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ max_vms: 9, quota_version: version + 2 });
    // A spawn carrying the stale Postgres quota (version) does not roll it back either.
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    expect(await handle(tenantId).query(usageQuery)).toMatchObject({ max_vms: 9, quota_version: version + 2 });
  });
});

describe('a quota change the tenant workflow does not confirm', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ configOverrides: { TEMPORAL_CALL_TIMEOUT_MS: '2000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when the workflow cannot take the new quota, then PATCH answers 503 naming temporal and the stored version, and the next spawn applies it', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    await stack.stopWorker(); // nothing processes the workflow's tasks: the update is never accepted
    const patched = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 1 } });
    expect(patched.status).toBe(503);
    expect(patched.headers.get('retry-after')).toBe('5');
    const stored = await stack.db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();
    expect(patched.body).toMatchObject({ code: 'dependency_unavailable', dependency: 'temporal', quota_version: stored.quota_version });
    expect(stored.max_vms).toBe(1);

    await stack.startWorker();
    const refused = await eventually(
      async () => {
        const res = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
        return res.status === 429 ? res : undefined;
      },
      30_000,
      'the spawn judged by the new quota',
    );
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: 1, in_use: 1 });
    const usage = await stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
    expect({ max_vms: usage.max_vms, version: usage.quota_version }).toEqual({ max_vms: 1, version: stored.quota_version });
  }, 90_000);
});
