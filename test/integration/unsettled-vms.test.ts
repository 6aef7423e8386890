import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { recordVmStep } from '../../src/ledger/vm-steps';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { configureFleet, fleetVms } from '../../src/fleet-simulator/sim-client';
import { vmIdForIdempotencyKey } from '../../src/ledger/deterministic-ids';
import { LedgerWriter } from '../../src/ledger/ledger-writer';
import { createLogger } from '../../src/logging/logger';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery, type SpawnVmRequest } from '../../src/shared/tenant-workflow.messages';
import type { TenantWorkflowGateway } from '../../src/tenants/tenant-workflow-gateway';
import { recordSpawnRequest } from '../../src/vms/spawn-admission';
import { transitionVm } from '../../src/vms/vm.repository';
import { resolveUndecided } from '../../src/workers/admission-resolver';
import { replayLiveRuns } from '../helpers/replay-live';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/**
 * Requests Postgres holds but nobody saw decided (docs/admission-protocol.md, "Windows"): a spawn
 * recorded `requested` by an API that died before it asked the tenant workflow, and a destroy recorded
 * `destroying` that the workflow never heard. The admission resolver (or a client retry under the same
 * Idempotency-Key) asks for the decision: the workflow decides against the quota like any request.
 * Nothing is ever adopted past the quota.
 */
describe('requests Postgres holds but nobody saw decided', () => {
  let stack: TestStack;
  let ledger: LedgerWriter;
  beforeAll(async () => {
    stack = await startTestStack();
    ledger = new LedgerWriter(stack.db);
  });
  afterAll(async () => {
    await stack?.close();
  });

  const context = { request_id: 'died-after-recording', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null };
  const silent = createLogger({ name: 'test', level: 'silent' });
  const usage = (tenantId: string) => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);
  const rowOf = (vmId: string) =>
    stack.db.selectFrom('vms').select(['status', 'failure_reason', 'admission_attempt']).where('vm_id', '=', vmId).executeTakeFirst();
  const holdingInPostgres = async (tenantId: string) =>
    (
      await stack.db
        .selectFrom('vms')
        .select('vm_id')
        .where('tenant_id', '=', tenantId)
        .where('status', 'in', ['provisioning', 'running', 'destroying'])
        .execute()
    ).length;
  const ledgerOf = async (vmId: string) =>
    (await stack.db.selectFrom('audit_events').select(['event_type', 'request_id', 'details']).where('vm_id', '=', vmId).orderBy('seq').execute()).map((e) => ({
      type: e.event_type,
      request_id: e.request_id,
      details: e.details,
    }));

  /** What an API killed right after recording the request leaves (api.spawn.after-request-recorded): the row `requested`, no decision. */
  async function leftBehind(tenantId: string, vmId: string = randomUUID()): Promise<string> {
    const request: SpawnVmRequest = { vm_id: vmId, shape: { ...SMALL_VM, name: null }, created_at: new Date().toISOString(), context, attempt: 1 };
    expect(await recordSpawnRequest({ db: stack.db, ledger, workflows: stack.gateway, now: () => new Date() }, tenantId, request)).toMatchObject({
      max_vms: expect.any(Number),
      version: expect.any(Number),
    });
    expect(await rowOf(vmId)).toMatchObject({ status: 'requested', admission_attempt: 1 });
    return vmId;
  }

  /**
   * One round of the admission resolver, for this file's tenants, as it would run 20 s from now (the
   * rows are then past its 15 s). The scratch database is shared with the other test files, whose
   * undecided rows are theirs: the workflows of other tenants are not asked. The worker's own resolver
   * leaves rows this young alone. Returns what was sent.
   */
  async function resolverRound(tenantIds: readonly string[]): Promise<string[]> {
    const sent: string[] = [];
    const mine = (tenantId: string) => {
      if (!tenantIds.includes(tenantId)) throw new Error(`tenant ${tenantId} belongs to another test file`);
    };
    const workflows: TenantWorkflowGateway = {
      ...stack.gateway,
      spawn: async (tenantId, request) => {
        mine(tenantId);
        sent.push(`spawn ${request.vm_id}`);
        return stack.gateway.spawn(tenantId, request);
      },
      destroy: async (tenantId, vmId, ctx, storageGb) => {
        mine(tenantId);
        sent.push(`destroy ${vmId}`);
        return stack.gateway.destroy(tenantId, vmId, ctx, storageGb);
      },
    };
    await resolveUndecided({ db: stack.db, ledger, workflows, log: silent, now: () => new Date(Date.now() + 20_000) }, 15_000, 10_000);
    return sent;
  }

  /** Samples the workflow's usage and the rows holding quota until stopped; returns the largest of either. */
  function watchUsage(tenantId: string): { stop(): Promise<number> } {
    let watching = true;
    let most = 0;
    const sampler = (async () => {
      while (watching) {
        most = Math.max(most, (await usage(tenantId)).vms, await holdingInPostgres(tenantId));
        await sleep(20);
      }
    })();
    return {
      async stop() {
        watching = false;
        await sampler;
        return most;
      },
    };
  }

  test('when an API died after recording a spawn and no client retries, then the admission resolver has it decided: it fits, so it is admitted and boots', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 2 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202); // the workflow is running
    const watch = watchUsage(tenantId);
    const vmId = await leftBehind(tenantId);
    expect((await usage(tenantId)).vms).toBe(1); // the workflow never heard of it

    expect(await resolverRound([tenantId])).toEqual([`spawn ${vmId}`]);
    await eventually(async () => (await rowOf(vmId))?.status === 'running', 20_000, 'the decided VM running');
    await eventually(async () => (await usage(tenantId)).provisioning === 0, 20_000, 'both boots over');
    expect(await usage(tenantId)).toMatchObject({ vms: 2, provisioning: 0 });
    expect(await watch.stop()).toBeLessThanOrEqual(2);
    expect((await ledgerOf(vmId)).map((e) => e.type)).toEqual(['VM_SPAWN_REQUESTED', 'VM_RUNNING']);
    expect((await fleetVms(stack.fleet.url, tenantId)).filter((vm) => vm.vm_id === vmId).map((vm) => vm.status)).toEqual(['running']);
    // A second round finds nothing of this tenant left to send.
    expect(await resolverRound([tenantId])).toEqual([]);
    expect(await replayLiveRuns(stack.temporal, tenantWorkflowId(tenantId))).toBe(1);
  });

  test('when an API died after recording a spawn and the quota is full, then the admission resolver has it refused: rejected, never adopted past the quota', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 1 });
    const first = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(first.status).toBe(202); // the quota is full
    const watch = watchUsage(tenantId);
    const vmId = await leftBehind(tenantId);

    expect(await resolverRound([tenantId])).toEqual([`spawn ${vmId}`]);
    // The refusal is recorded by the round itself: the row is rejected and holds no quota.
    expect(await rowOf(vmId)).toMatchObject({ status: 'rejected', failure_reason: 'quota_exceeded' });
    await eventually(async () => (await rowOf(first.body.vm_id))?.status === 'running', 20_000, 'the admitted VM running');
    await sleep(500); // long enough for a wrongly admitted boot to show in the samples
    expect(await watch.stop()).toBe(1);
    expect(await usage(tenantId)).toMatchObject({ vms: 1, max_vms: 1, provisioning: 0 });
    expect(await holdingInPostgres(tenantId)).toBe(1);
    expect((await fleetVms(stack.fleet.url, tenantId)).map((vm) => vm.vm_id)).toEqual([first.body.vm_id]);
    const steps = await ledgerOf(vmId);
    expect(steps).toEqual([
      { type: 'VM_SPAWN_REQUESTED', request_id: context.request_id, details: expect.anything() },
      {
        type: 'VM_SPAWN_REJECTED',
        request_id: expect.stringMatching(/^admission-resolver/),
        details: expect.objectContaining({ reason: 'quota_exceeded', limit: 'max_vms', limit_value: 1, in_use: 1 }),
      },
    ]);
    // Decided once: a second round finds nothing to send.
    expect(await resolverRound([tenantId])).toEqual([]);
    expect(await rowOf(vmId)).toMatchObject({ status: 'rejected' });
  });

  test('when the client retries with the same Idempotency-Key, then the API asks for the decision under the same update and answers it: admitted, it boots', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    const key = `retried-${randomUUID()}`;
    const vmId = await leftBehind(tenantId, vmIdForIdempotencyKey(tenantId, key));

    const retried = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': key } });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ vm_id: vmId, status: 'provisioning' });
    await eventually(async () => (await rowOf(vmId))?.status === 'running', 20_000, 'the decided VM running');
    await eventually(async () => (await usage(tenantId)).provisioning === 0, 20_000, 'both boots over');
    expect(await usage(tenantId)).toMatchObject({ vms: 2, provisioning: 0 });
    // The same request, not a second one: recorded once, at its first attempt.
    expect(await rowOf(vmId)).toMatchObject({ admission_attempt: 1 });
    expect((await ledgerOf(vmId)).map((e) => e.type)).toEqual(['VM_SPAWN_REQUESTED', 'VM_RUNNING']);
  });

  test('when the client retries with the same Idempotency-Key at a full quota, then it is answered the refusal and the row is rejected', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 1 });
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(202);
    const key = `retried-${randomUUID()}`;
    const vmId = await leftBehind(tenantId, vmIdForIdempotencyKey(tenantId, key));

    const retried = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': key } });
    expect(retried.status).toBe(429);
    expect(retried.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: 1, in_use: 1 });
    expect(await rowOf(vmId)).toMatchObject({ status: 'rejected', failure_reason: 'quota_exceeded', admission_attempt: 1 });
    expect(await usage(tenantId)).toMatchObject({ vms: 1 });
    expect(await holdingInPostgres(tenantId)).toBe(1);
    expect((await ledgerOf(vmId)).map((e) => [e.type, e.request_id])).toEqual([
      ['VM_SPAWN_REQUESTED', context.request_id],
      ['VM_SPAWN_REJECTED', retried.body.request_id],
    ]);
  });

  test('when a destroy of a running VM was recorded but the workflow never heard it, then the admission resolver sends it and the VM is torn down', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    const vmId = spawned.body.vm_id as string;
    await eventually(async () => (await rowOf(vmId))?.status === 'running', 20_000, 'the VM running');
    // What an API killed after recording the destroy leaves (api.destroy.after-request-recorded).
    await ledger.run(async (trx) => {
      expect(await transitionVm(trx, vmId, ['running'], 'destroying', new Date())).toBe(true);
      await recordVmStep(trx, { tenant_id: tenantId, vm_id: vmId, event_type: 'VM_DESTROY_REQUESTED', context, at: new Date() }, { afterOwnTransition: true });
    });
    await sleep(500);
    expect(await usage(tenantId)).toMatchObject({ vms: 1, destroying: 0 }); // the workflow never heard of it
    expect((await fleetVms(stack.fleet.url, tenantId)).map((vm) => vm.status)).toEqual(['running']);

    expect(await resolverRound([tenantId])).toEqual([`destroy ${vmId}`]);
    await eventually(async () => (await rowOf(vmId))?.status === 'destroyed', 30_000, 'the VM destroyed');
    await eventually(async () => (await usage(tenantId)).destroying === 0, 20_000, 'the teardown over');
    expect(await usage(tenantId)).toMatchObject({ vms: 0, provisioning: 0, destroying: 0 });
    expect((await fleetVms(stack.fleet.url, tenantId)).map((vm) => vm.status)).toEqual(['destroyed']);
    expect((await ledgerOf(vmId)).map((e) => e.type)).toEqual(['VM_SPAWN_REQUESTED', 'VM_RUNNING', 'VM_DESTROY_REQUESTED', 'VM_DESTROYED']);
    expect(await resolverRound([tenantId])).toEqual([]);
  });

  test('when a destroy was recorded while the VM booted but the workflow never heard it, then the boot ends in a destroy, not a failure', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 5 });
    const fleet = (controls: SimControlsPatch) => configureFleet(stack.fleet.url, controls);
    await fleet({ fault: 'http_500' });
    try {
      const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
      const vmId = spawned.body.vm_id as string;
      // The boot confirms the admitted row first (the fleet then keeps failing it).
      await eventually(async () => (await rowOf(vmId))?.status === 'provisioning', 20_000, 'the row confirmed');
      // What a destroy whose update never reached the workflow leaves: the row destroying, and its ledger entry.
      await ledger.run(async (trx) => {
        expect(await transitionVm(trx, vmId, ['provisioning'], 'destroying', new Date())).toBe(true);
        await recordVmStep(
          trx,
          { tenant_id: tenantId, vm_id: vmId, event_type: 'VM_DESTROY_REQUESTED', context, at: new Date() },
          { afterOwnTransition: true },
        );
      });
      await fleet({ fault: 'none' });
      await eventually(async () => (await rowOf(vmId))?.status === 'destroyed', 30_000, 'the VM destroyed');
      await eventually(async () => (await usage(tenantId)).destroying === 0, 20_000, 'the teardown over');
      expect(await usage(tenantId)).toMatchObject({ vms: 0, provisioning: 0, destroying: 0 });
      expect((await ledgerOf(vmId)).map((e) => e.type)).toEqual(['VM_SPAWN_REQUESTED', 'VM_DESTROY_REQUESTED', 'VM_DESTROYED']);
      // The fleet never created it, and never will: its id is tombstoned.
      expect(await fleetVms(stack.fleet.url, tenantId)).toEqual([]);
    } finally {
      await fleet({ fault: 'none' });
    }
  });
});
