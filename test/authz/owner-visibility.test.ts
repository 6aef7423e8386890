/**
 * Owner visibility evidence for the tenant workflows (issue 4, section 4; seed 004 follow-ups
 * SEC-ARCH-TEMPORAL-WORKFLOW-OWNER-SCOPE-VISIBILITY-001 and SEC-ARCH-EVENT-WORKFLOW-ISOLATION-EVIDENCE-001):
 * every tenant workflow run carries its TenantId search attribute and memo, and nothing a tenant's
 * workflow holds (input, memo, search attributes, updates, activity inputs and results) names another tenant.
 */
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { hashToken } from '../../src/auth/token-format';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { TENANT_ID_SEARCH_ATTRIBUTE } from '../../src/temporal/search-attributes';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/** History as text, with every payload (JSON bytes) decoded, so ids inside inputs and memos are visible. */
function historyText(history: unknown): string {
  return JSON.stringify(history, (_key, value: unknown) => {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    // Buffer.toJSON runs before the replacer sees the value.
    if (value && typeof value === 'object' && (value as { type?: unknown }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
      return Buffer.from((value as { data: number[] }).data).toString('utf8');
    }
    return value;
  });
}

interface Fixture {
  tenantId: string;
  token: string;
  vmIds: string[];
}

describe('tenant workflows: owner visibility', () => {
  let stack: TestStack;
  let a: Fixture;
  let b: Fixture;
  let deletedTenantId: string;

  async function spawn(token: string): Promise<string> {
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    return spawned.body.vm_id;
  }

  async function waitForStatus(token: string, vmId: string, status: string): Promise<void> {
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === status, 20_000, `VM ${vmId} ${status}`);
  }

  /** Every run (continue-as-new included) of the workflows on this stack's task queue. */
  async function listRuns(query: string): Promise<WorkflowExecutionInfo[]> {
    const runs: WorkflowExecutionInfo[] = [];
    for await (const run of stack.temporal.workflow.list({ query: `TaskQueue = '${stack.config.temporalTaskQueue}' AND ${query}` })) runs.push(run);
    return runs;
  }

  async function historiesOf(tenantId: string): Promise<string> {
    const runs = await listRuns(`WorkflowId = '${tenantWorkflowId(tenantId)}'`);
    const texts = await Promise.all(runs.map((run) => stack.temporal.workflow.getHandle(run.workflowId, run.runId).fetchHistory().then(historyText)));
    return texts.join('\n');
  }

  beforeAll(async () => {
    // A low continue-as-new threshold, so tenant A's workflow has more than one run to check.
    stack = await startTestStack({ continueAsNewAfterUpdates: 3 });
    const [tenantA, tenantB, tenantC] = await Promise.all([createTenant(stack), createTenant(stack), createTenant(stack)]);
    a = { tenantId: tenantA.tenantId, token: tenantA.token, vmIds: [] };
    b = { tenantId: tenantB.tenantId, token: tenantB.token, vmIds: [] };
    deletedTenantId = tenantC.tenantId;

    // Work in both tenants at once: spawns, a destroy and quota changes reach both workflows.
    a.vmIds = await Promise.all([spawn(a.token), spawn(a.token)]);
    b.vmIds = [await spawn(b.token)];
    await Promise.all([...a.vmIds.map((id) => waitForStatus(a.token, id, 'running')), waitForStatus(b.token, b.vmIds[0]!, 'running')]);
    expect((await stack.request('DELETE', `/v1/vms/${a.vmIds[0]}`, { token: a.token })).status).toBe(202);
    for (const tenantId of [a.tenantId, b.tenantId]) {
      expect((await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 5 } })).status).toBe(200);
    }
    await waitForStatus(a.token, a.vmIds[0]!, 'destroyed');
    expect((await stack.request('DELETE', `/v1/tenants/${deletedTenantId}`, { token: stack.adminToken })).status).toBe(200);
  });

  afterAll(async () => {
    await stack?.close();
  });

  test('when the tenant workflows of a run are listed, then every run carries a TenantId search attribute naming the tenant of its workflow id', async () => {
    const tenantIds = [a.tenantId, b.tenantId, deletedTenantId];
    const runs = await eventually(
      async () => {
        const found = await listRuns(`WorkflowType = 'tenantWorkflow'`);
        // A continued as new at least once, so it has two runs or more.
        const aRuns = found.filter((run) => run.workflowId === tenantWorkflowId(a.tenantId));
        return tenantIds.every((id) => found.some((run) => run.workflowId === tenantWorkflowId(id))) && aRuns.length >= 2 ? found : undefined;
      },
      20_000,
      'visibility of every tenant workflow run',
    );
    const owners = runs.map((run) => ({ workflowId: run.workflowId, runId: run.runId, tenantId: run.typedSearchAttributes.get(TENANT_ID_SEARCH_ATTRIBUTE) }));
    expect(owners).toEqual(runs.map((run) => ({ workflowId: run.workflowId, runId: run.runId, tenantId: run.workflowId.replace(/^tenant-/, '') })));
  });

  test("when a tenant's workflow is described, then its TenantId search attribute and memo name that tenant only", async () => {
    for (const tenantId of [a.tenantId, b.tenantId, deletedTenantId]) {
      const description = await stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).describe();
      expect(description.typedSearchAttributes.get(TENANT_ID_SEARCH_ATTRIBUTE)).toBe(tenantId);
      expect(description.searchAttributes.TenantId).toEqual([tenantId]);
      expect(await description.memo).toEqual({ tenant_id: tenantId });
    }
  });

  test("when workflows are searched by TenantId, then only that tenant's workflow runs come back", async () => {
    for (const tenantId of [a.tenantId, b.tenantId]) {
      const runs = await eventually(async () => {
        const found = await listRuns(`TenantId = '${tenantId}'`);
        return found.length > 0 ? found : undefined;
      });
      expect([...new Set(runs.map((run) => run.workflowId))]).toEqual([tenantWorkflowId(tenantId)]);
    }
  });

  test("when A's and B's workflow histories (every run) are decoded, then each names its own tenant and VMs and never the other's", async () => {
    const [historyA, historyB] = await Promise.all([historiesOf(a.tenantId), historiesOf(b.tenantId)]);
    // The decoding works: each history does name its own tenant and VMs.
    expect(historyA).toContain(a.tenantId);
    for (const vmId of a.vmIds) expect(historyA).toContain(vmId);
    expect(historyB).toContain(b.tenantId);
    expect(historyB).toContain(b.vmIds[0]);

    for (const foreign of [b.tenantId, deletedTenantId, ...b.vmIds]) expect(historyA).not.toContain(foreign);
    for (const foreign of [a.tenantId, deletedTenantId, ...a.vmIds]) expect(historyB).not.toContain(foreign);
  });

  test('when the workflow histories are decoded, then no bearer token and no hash of one appears in any input, memo, update or activity payload', async () => {
    const histories = await Promise.all([a.tenantId, b.tenantId, deletedTenantId].map(historiesOf));
    const text = histories.join('\n');
    for (const secret of [a.token, b.token, stack.adminToken]) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(hashToken(secret));
    }
  });
});
