import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { WorkflowHandle } from '@temporalio/client';
import { ensureTemporalBinary } from '../../src/devstack/temporal-binary';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery, type SpawnVmRequest } from '../../src/shared/tenant-workflow.messages';
import { TENANT_ID_SEARCH_ATTRIBUTE } from '../../src/temporal/search-attributes';
import { configureFleet, fleetTenantStats, fleetVms } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const run = promisify(execFile);

// Generous: a loaded 2-core machine runs Temporal, Postgres, NATS and two Jest workers at once.
jest.setTimeout(180_000);
const SETTLE_MS = 60_000;

async function spawnVm(stack: TestStack, token: string, headers: Record<string, string> = {}) {
  return stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers });
}

async function awaitStatus(stack: TestStack, token: string, vmId: string, status: string) {
  return eventually(
    async () => {
      const got = await stack.request('GET', `/v1/vms/${vmId}`, { token });
      return got.body?.status === status ? got.body : undefined;
    },
    SETTLE_MS,
    `VM ${vmId} to be ${status}`,
  );
}

function tenantHandle(stack: TestStack, tenantId: string, runId?: string): WorkflowHandle {
  return stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId), runId);
}

describe('tenant workflow: operator view, recovery and retries', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await configureFleet(stack.fleet.url, { fault: 'none', boot_ms: 50 }).catch(() => undefined);
    await stack?.close();
  });

  test('when a tenant has VMs, then its workflow carries TenantId, memo and summary, answers usage, and the CLI lists only its workflow', async () => {
    const mine = await createTenant(stack);
    const other = await createTenant(stack);
    const spawned = await spawnVm(stack, mine.token);
    expect(spawned.status).toBe(202);
    expect((await spawnVm(stack, other.token)).status).toBe(202);
    await awaitStatus(stack, mine.token, spawned.body.vm_id, 'running');

    const handle = tenantHandle(stack, mine.tenantId);
    const description = await handle.describe();
    expect(description.status.name).toBe('RUNNING');
    expect(description.typedSearchAttributes.get(TENANT_ID_SEARCH_ATTRIBUTE)).toBe(mine.tenantId);
    expect(description.memo).toEqual({ tenant_id: mine.tenantId });
    expect(await description.staticSummary()).toContain(mine.tenantId);

    const usage = await handle.query(usageQuery);
    expect(usage).toMatchObject({ tenant_id: mine.tenantId, vms: 1, storage_gb: SMALL_VM.storage_gb, max_vms: 10, storage_quota_gb: 100, closed: false });

    // Operators' path: the Temporal CLI against this run's server (visibility is eventually consistent).
    const temporalBin = await ensureTemporalBinary();
    const listed = await eventually(
      async () => {
        const { stdout } = await run(temporalBin, [
          'workflow',
          'list',
          '--address',
          stack.config.temporalAddress,
          '--namespace',
          stack.config.temporalNamespace,
          '--query',
          `TenantId="${mine.tenantId}"`,
          '-o',
          'json',
        ]);
        const rows = parseCliJson(stdout);
        return rows.length > 0 ? rows : undefined;
      },
      SETTLE_MS,
      'the CLI to list the tenant workflow',
    );
    const ids = listed.map((row) => row.execution?.workflowId ?? row.execution?.workflow_id);
    expect(new Set(ids)).toEqual(new Set([tenantWorkflowId(mine.tenantId)]));
    expect(ids).not.toContain(tenantWorkflowId(other.tenantId));
  });

  test('when an operator terminates a tenant workflow, then the next request rebuilds usage from Postgres and quota still holds', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 2 });
    const first = await spawnVm(stack, token);
    const second = await spawnVm(stack, token);
    expect([first.status, second.status]).toEqual([202, 202]);
    await awaitStatus(stack, token, first.body.vm_id, 'running');
    await awaitStatus(stack, token, second.body.vm_id, 'running');

    const lost = await tenantHandle(stack, tenantId).describe();
    await tenantHandle(stack, tenantId).terminate('test: operator terminated the tenant workflow');

    const refused = await spawnVm(stack, token);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: 2, in_use: 2, requested: 1 });

    // A new run holds the rebuilt usage, and still carries the tenant's search attribute.
    const rebuilt = await tenantHandle(stack, tenantId).describe();
    expect(rebuilt.runId).not.toBe(lost.runId);
    expect(rebuilt.status.name).toBe('RUNNING');
    expect(rebuilt.typedSearchAttributes.get(TENANT_ID_SEARCH_ATTRIBUTE)).toBe(tenantId);
    expect(await tenantHandle(stack, tenantId).query(usageQuery)).toMatchObject({ vms: 2, storage_gb: 2 * SMALL_VM.storage_gb, max_vms: 2 });

    // The rebuilt run can destroy the VMs it recovered, and the freed slot is usable again.
    expect((await stack.request('DELETE', `/v1/vms/${first.body.vm_id}`, { token })).status).toBe(202);
    await awaitStatus(stack, token, first.body.vm_id, 'destroyed');
    const third = await spawnVm(stack, token);
    expect(third.status).toBe(202);
    await awaitStatus(stack, token, third.body.vm_id, 'running');
    expect((await fleetVms(stack.fleet.url, tenantId)).filter((vm) => vm.status === 'running')).toHaveLength(2);
  });

  test('when the fleet fails while a VM boots, then the retried spawn activity reuses the fleet VM and never creates a second one', async () => {
    const { tenantId, token } = await createTenant(stack);
    await configureFleet(stack.fleet.url, { boot_ms: 3000 });
    try {
      const spawned = await spawnVm(stack, token);
      expect(spawned.status).toBe(202);
      const vmId: string = spawned.body.vm_id;
      await eventually(async () => (await fleetTenantStats(stack.fleet.url, tenantId)).creates === 1, SETTLE_MS, 'the fleet to create the VM');

      // The activity's boot polling now fails: its attempt fails and Temporal retries it.
      await configureFleet(stack.fleet.url, { fault: 'http_500' });
      await eventually(
        async () => {
          const pending = (await tenantHandle(stack, tenantId).describe()).raw.pendingActivities ?? [];
          return pending.some((activity) => (activity.attempt ?? 0) >= 2);
        },
        SETTLE_MS,
        'the spawn activity to be retried',
      );
      await configureFleet(stack.fleet.url, { fault: 'none' });

      await awaitStatus(stack, token, vmId, 'running');
      const stats = await fleetTenantStats(stack.fleet.url, tenantId);
      expect(stats.spawn_calls).toBeGreaterThanOrEqual(2); // the retry did reach the fleet...
      expect(stats.creates).toBe(1); // ...and found the VM it had already created
      expect((await fleetVms(stack.fleet.url, tenantId)).map((vm) => vm.vm_id)).toEqual([vmId]);
      const listed = await stack.request('GET', '/v1/vms', { token });
      expect(listed.body.items.map((vm: { vm_id: string }) => vm.vm_id)).toEqual([vmId]);
    } finally {
      await configureFleet(stack.fleet.url, { fault: 'none', boot_ms: 50 });
    }
  });
});

describe('tenant workflow: continue-as-new', () => {
  const THRESHOLD = 3;
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack({ continueAsNewAfterUpdates: THRESHOLD });
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when updates pass the threshold, then the workflow continues as new keeping usage, quota, idempotency and TenantId', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 3 });
    const firstRunId = (await tenantHandle(stack, tenantId).describe()).runId;

    // Run 1: an idempotent spawn, then two more, then a destroy: four updates > threshold.
    const keyed = await spawnVm(stack, token, { 'Idempotency-Key': 'can-key-1' });
    expect(keyed.status).toBe(202);
    const keyedVmId: string = keyed.body.vm_id;
    const b = await spawnVm(stack, token);
    const c = await spawnVm(stack, token);
    expect([b.status, c.status]).toEqual([202, 202]);
    for (const vmId of [keyedVmId, b.body.vm_id, c.body.vm_id]) await awaitStatus(stack, token, vmId, 'running');
    expect((await stack.request('DELETE', `/v1/vms/${b.body.vm_id}`, { token })).status).toBe(202);
    await awaitStatus(stack, token, b.body.vm_id, 'destroyed');

    // Run 2 and later: more spawns and destroys.
    const d = await spawnVm(stack, token);
    expect(d.status).toBe(202);
    await awaitStatus(stack, token, d.body.vm_id, 'running');
    expect((await stack.request('DELETE', `/v1/vms/${c.body.vm_id}`, { token })).status).toBe(202);
    await awaitStatus(stack, token, c.body.vm_id, 'destroyed');
    const e = await spawnVm(stack, token);
    expect(e.status).toBe(202);
    await awaitStatus(stack, token, e.body.vm_id, 'running');
    // In use now: keyed, d, e = 3 of 3.

    const current = await eventually(
      async () => {
        const described = await tenantHandle(stack, tenantId).describe();
        return described.runId !== firstRunId && described.status.name === 'RUNNING' ? described : undefined;
      },
      SETTLE_MS,
      'a new run',
    );
    expect(current.typedSearchAttributes.get(TENANT_ID_SEARCH_ATTRIBUTE)).toBe(tenantId);
    expect(current.memo).toEqual({ tenant_id: tenantId });

    const firstRun = await tenantHandle(stack, tenantId, firstRunId).fetchHistory();
    // The first run's history ends in ContinueAsNew, carrying its state to the next run.
    expect(firstRun.events!.at(-1)!.workflowExecutionContinuedAsNewEventAttributes).toBeTruthy();
    const runs = await eventually(
      async () => {
        const found: string[] = [];
        for await (const execution of stack.temporal.workflow.list({ query: `WorkflowId="${tenantWorkflowId(tenantId)}"` })) found.push(execution.runId);
        return found.length >= 3 ? found : undefined;
      },
      SETTLE_MS,
      'three runs in visibility',
    );
    expect(new Set(runs).size).toBe(runs.length);

    // Usage survived every run, and the quota still holds.
    expect(await tenantHandle(stack, tenantId).query(usageQuery)).toMatchObject({ vms: 3, storage_gb: 3 * SMALL_VM.storage_gb, max_vms: 3 });
    const refused = await spawnVm(stack, token);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', in_use: 3 });

    // A retry of the first request, under its key: the same answer, and no second VM.
    const retried = await spawnVm(stack, token, { 'Idempotency-Key': 'can-key-1' });
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual(keyed.body);
    // A retry of the keyed spawn after its Idempotency-Key record expired converges on the same VM
    // (Postgres holds it), instead of spawning again or being refused for the full quota.
    await stack.db.deleteFrom('idempotency_keys').where('tenant_id', '=', tenantId).execute();
    const keyedRetry = await spawnVm(stack, token, { 'Idempotency-Key': 'can-key-1' });
    expect(keyedRetry.status).toBe(202);
    expect(keyedRetry.body).toMatchObject({ vm_id: keyedVmId, status: 'running' });
    const again: SpawnVmRequest = {
      vm_id: keyedVmId,
      shape: { ...SMALL_VM, name: null },
      created_at: keyed.body.created_at,
      context: { request_id: 'test-retry', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null },
    };
    // So is a late retry of a destroy that settled in an earlier run.
    expect(await stack.gateway.destroy(tenantId, b.body.vm_id, again.context, SMALL_VM.storage_gb)).toEqual({ vm_id: b.body.vm_id, status: 'destroyed' });

    expect((await fleetTenantStats(stack.fleet.url, tenantId)).creates).toBe(5); // keyed, b, c, d, e: one fleet VM each
    expect((await stack.request('GET', '/v1/vms?status=running', { token })).body.items).toHaveLength(3);
  });
});

/** `temporal workflow list -o json` prints a JSON array (or one object per line in some versions). */
function parseCliJson(stdout: string): Array<{ execution?: { workflowId?: string; workflow_id?: string } }> {
  const text = stdout.trim();
  if (!text) return [];
  if (text.startsWith('[')) return JSON.parse(text);
  return text
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line));
}
