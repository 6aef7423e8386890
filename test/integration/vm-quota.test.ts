import { setTimeout as sleep } from 'node:timers/promises';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { usageQuery, type TenantUsage } from '../../src/shared/tenant-workflow.messages';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { configureFleet, fleetVms as fleetVmsAt } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';

/**
 * Quota is checked and reserved inside the tenant workflow, so no burst of concurrent requests can
 * pass against the same total. These tests count what the API answered, what Postgres holds, what
 * the fleet holds and what the workflow reports, and require all four to agree.
 */
describe('VM quota through the tenant workflow', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // These bursts (600 requests at once on two cores shared with the rest of the suite) test the
    // quota, not latency: a 503 at the 10 s default deadline would be a correct answer under that
    // load, but not what this file is about. Deadlines have their own tests (temporal-deadline, faults).
    stack = await startTestStack({ configOverrides: { TEMPORAL_CALL_TIMEOUT_MS: '60000' } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  // Ample API rate limit: these tests are about quota, not request rate.
  const newTenant = (overrides: Record<string, unknown> = {}) => createTenant(stack, { api_rate_limit_rpm: 100_000, ...overrides });

  const spawn = (token: string, body: object = SMALL_VM) => stack.request('POST', '/v1/vms', { token, body });

  const fleetVms = (tenantId: string) => fleetVmsAt(stack.fleet.url, tenantId);
  const setFleet = (controls: SimControlsPatch) => configureFleet(stack.fleet.url, controls);

  const dbVms = (tenantId: string) => stack.db.selectFrom('vms').select(['vm_id', 'status', 'failure_reason']).where('tenant_id', '=', tenantId).execute();
  type DbVm = Awaited<ReturnType<typeof dbVms>>[number];
  /** The rows that count against the quota (docs/admission-protocol.md); `requested` and `rejected` rows do not. */
  const holdsQuota = (row: DbVm) => row.status === 'provisioning' || row.status === 'running' || row.status === 'destroying';
  /**
   * A spawn the workflow refused for quota: its row is `rejected`, with the reason; or admission_lost
   * when the run, rebuilt at its start, found the request recorded, held it pending, and could no
   * longer fit it (its abandonment may record the refusal before the API does).
   */
  const refusedForQuota = (row: DbVm) => row.status === 'rejected' && (row.failure_reason === 'quota_exceeded' || row.failure_reason === 'admission_lost');

  const usage = (tenantId: string) => stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).query(usageQuery);

  /** Waits until no VM of the tenant is mid-transition (undecided, booting, being destroyed), in Postgres and in the workflow. */
  async function settled(tenantId: string, timeoutMs = 60_000): Promise<TenantUsage> {
    return eventually(
      async () => {
        const rows = await dbVms(tenantId);
        if (rows.some((row) => row.status === 'requested' || row.status === 'provisioning' || row.status === 'destroying')) return undefined;
        const u = await usage(tenantId);
        return u.provisioning === 0 && u.destroying === 0 ? u : undefined;
      },
      timeoutMs,
      `tenant ${tenantId} to settle`,
    );
  }

  /** Counts answers by status; asserts none was a 5xx and every 429 was a quota refusal. */
  function tally(responses: ApiResponse[]): { accepted: ApiResponse[]; refused: ApiResponse[] } {
    const serverErrors = responses.filter((r) => r.status >= 500).map((r) => ({ status: r.status, body: r.body }));
    expect(serverErrors).toEqual([]);
    const accepted = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status === 429);
    expect(accepted.length + refused.length).toBe(responses.length);
    for (const r of refused) expect(r.body.code).toBe('quota_exceeded');
    return { accepted, refused };
  }

  test('when a tenant with max_vms 10 spawns 10 VMs, then the 11th gets 429 quota_exceeded with the limit, its row is rejected and holds no quota, and the ledger records its request and refusal', async () => {
    const { token, tenantId } = await newTenant({ max_vms: 10 });
    for (let i = 0; i < 10; i++) {
      const spawned = await spawn(token);
      expect(spawned.status).toBe(202);
      expect(spawned.body).toMatchObject({ tenant_id: tenantId, status: 'provisioning' });
    }

    const eleventh = await spawn(token);
    expect(eleventh.status).toBe(429);
    expect(eleventh.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(eleventh.body).toMatchObject({ status: 429, code: 'quota_exceeded', limit: 'max_vms', limit_value: 10, in_use: 10, requested: 1 });

    const audit = await stack.request('GET', '/v1/audit?event_type=VM_SPAWN_REJECTED', { token });
    expect(audit.status).toBe(200);
    expect(audit.body.items).toHaveLength(1);
    expect(audit.body.items[0]).toMatchObject({
      tenant_id: tenantId,
      event_type: 'VM_SPAWN_REJECTED',
      details: { reason: 'quota_exceeded', limit: 'max_vms', limit_value: 10, in_use: 10, requested: 1 },
      source: { request_id: eleventh.body.request_id },
    });
    // The refused request was recorded before the workflow decided; its row is rejected, never counted.
    const rows = await dbVms(tenantId);
    expect(rows.filter(holdsQuota)).toHaveLength(10);
    const rejected = rows.filter((row) => !holdsQuota(row));
    expect(rejected).toEqual([{ vm_id: audit.body.items[0].vm_id, status: 'rejected', failure_reason: 'quota_exceeded' }]);
    const steps = await stack.request('GET', `/v1/audit?vm_id=${rejected[0]!.vm_id}`, { token });
    expect(steps.body.items.map((e: { event_type: string; source: { request_id: string } }) => [e.event_type, e.source.request_id])).toEqual([
      ['VM_SPAWN_REQUESTED', eleventh.body.request_id],
      ['VM_SPAWN_REJECTED', eleventh.body.request_id],
    ]);
    expect((await usage(tenantId)).vms).toBe(10);
  });

  test('when VMs of 5 GB fill a 12 GB storage quota, then the third spawn gets 429 on storage_quota_gb', async () => {
    const { token } = await newTenant({ max_vms: 10, storage_quota_gb: 12 });
    expect((await spawn(token)).status).toBe(202);
    expect((await spawn(token)).status).toBe(202);

    const third = await spawn(token);
    expect(third.status).toBe(429);
    expect(third.body).toMatchObject({ code: 'quota_exceeded', limit: 'storage_quota_gb', limit_value: 12, in_use: 10, requested: 5 });
  });

  test('when 200 spawns for one tenant with max_vms 10 arrive at once, then exactly 10 are accepted, 190 refused, and fleet, Postgres and workflow agree on 10; interleaved destroys and spawns never exceed the quota', async () => {
    const { token, tenantId } = await newTenant({ max_vms: 10, storage_quota_gb: 10_000 });

    const burst = await Promise.all(Array.from({ length: 200 }, () => spawn(token)));
    const { accepted, refused } = tally(burst);
    expect(accepted).toHaveLength(10);
    expect(refused).toHaveLength(190);
    expect(new Set(accepted.map((r) => r.body.vm_id)).size).toBe(10);

    const afterBurst = await settled(tenantId);
    expect(afterBurst.vms).toBe(10);
    const fleetAfterBurst = await fleetVms(tenantId);
    expect(fleetAfterBurst).toHaveLength(10);
    expect(fleetAfterBurst.every((vm) => vm.status === 'running')).toBe(true);
    // Every request has a row; exactly the accepted ones hold quota, every refused one is refused in Postgres too.
    const rowsAfterBurst = await dbVms(tenantId);
    expect(rowsAfterBurst).toHaveLength(200);
    const holdingAfterBurst = rowsAfterBurst.filter(holdsQuota);
    expect(new Set(holdingAfterBurst.map((row) => row.vm_id))).toEqual(new Set(accepted.map((r) => r.body.vm_id)));
    expect(holdingAfterBurst.every((row) => row.status === 'running')).toBe(true);
    expect(rowsAfterBurst.filter((row) => !holdsQuota(row) && !refusedForQuota(row))).toEqual([]);

    // Interleave: destroy 5 while 10 more spawns race them. A sampler watches the fleet throughout;
    // any sample above the quota is a violation, whatever the timing.
    let sampling = true;
    let maxLiveAtFleet = 0;
    const sampler = (async () => {
      while (sampling) {
        const live = (await fleetVms(tenantId)).filter((vm) => vm.status !== 'destroyed' && vm.status !== 'failed').length;
        maxLiveAtFleet = Math.max(maxLiveAtFleet, live);
        await sleep(20);
      }
    })();
    const toDestroy = accepted.slice(0, 5).map((r) => r.body.vm_id as string);
    const [destroys, spawns] = await Promise.all([
      Promise.all(toDestroy.map((vmId) => stack.request('DELETE', `/v1/vms/${vmId}`, { token }))),
      Promise.all(Array.from({ length: 10 }, () => spawn(token))),
    ]);
    expect(destroys.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    const second = tally(spawns);

    const afterInterleave = await settled(tenantId);
    sampling = false;
    await sampler;
    expect(maxLiveAtFleet).toBeLessThanOrEqual(10);

    const rows = await dbVms(tenantId);
    const holding = rows.filter(holdsQuota);
    expect(holding.length).toBeLessThanOrEqual(10);
    // Every accepted spawn holds quota now; the five destroyed VMs and the refused spawns do not.
    expect(holding.length).toBe(5 + second.accepted.length);
    expect(rows).toHaveLength(210);
    expect(rows.filter(refusedForQuota)).toHaveLength(190 + second.refused.length);
    expect(rows.filter((row) => toDestroy.includes(row.vm_id)).every((row) => row.status === 'destroyed')).toBe(true);
    const liveAtFleet = (await fleetVms(tenantId)).filter((vm) => vm.status !== 'destroyed');
    expect(liveAtFleet.map((vm) => vm.vm_id).sort()).toEqual(holding.map((row) => row.vm_id).sort());
    expect(afterInterleave.vms).toBe(holding.length);
  }, 180_000);

  test('when 20 tenants with max_vms 5 each send 30 spawns at once, then exactly 5 are accepted per tenant and none fails with a 5xx', async () => {
    const tenants = await Promise.all(Array.from({ length: 20 }, () => newTenant({ max_vms: 5, storage_quota_gb: 10_000 })));
    const answers = await Promise.all(tenants.map((tenant) => Promise.all(Array.from({ length: 30 }, () => spawn(tenant.token)))));

    for (const [i, responses] of answers.entries()) {
      const { accepted, refused } = tally(responses);
      expect({ tenant: tenants[i]!.tenantId, accepted: accepted.length, refused: refused.length }).toEqual({
        tenant: tenants[i]!.tenantId,
        accepted: 5,
        refused: 25,
      });
    }
    for (const tenant of tenants) {
      const u = await settled(tenant.tenantId, 90_000);
      expect(u.vms).toBe(5);
      expect((await fleetVms(tenant.tenantId)).filter((vm) => vm.status !== 'destroyed')).toHaveLength(5);
      // Postgres agrees: five rows hold quota, the 25 refused requests are rejected.
      const rows = await dbVms(tenant.tenantId);
      expect({ tenant: tenant.tenantId, holding: rows.filter(holdsQuota).length, refused: rows.filter(refusedForQuota).length }).toEqual({
        tenant: tenant.tenantId,
        holding: 5,
        refused: 25,
      });
    }
  }, 240_000);

  test('when max_vms is lowered below current use, then new spawns are refused and nothing is destroyed; when raised again, then spawns are accepted without a restart', async () => {
    const { token, tenantId } = await newTenant({ max_vms: 5 });
    for (let i = 0; i < 3; i++) expect((await spawn(token)).status).toBe(202);
    await settled(tenantId);

    const lowered = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 2 } });
    expect(lowered.status).toBe(200);
    expect(lowered.body.max_vms).toBe(2);

    const refused = await spawn(token);
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'quota_exceeded', limit: 'max_vms', limit_value: 2, in_use: 3, requested: 1 });
    // Nothing was killed: the three VMs still run, here and at the fleet; the refused spawn is rejected.
    expect((await dbVms(tenantId)).map((row) => `${row.status} ${row.failure_reason}`).sort()).toEqual([
      'rejected quota_exceeded',
      'running null',
      'running null',
      'running null',
    ]);
    expect((await fleetVms(tenantId)).map((vm) => vm.status)).toEqual(['running', 'running', 'running']);
    expect((await usage(tenantId)).max_vms).toBe(2);

    const raised = await stack.request('PATCH', `/v1/tenants/${tenantId}`, { token: stack.adminToken, body: { max_vms: 4 } });
    expect(raised.status).toBe(200);
    expect((await spawn(token)).status).toBe(202);
    const full = await spawn(token);
    expect(full.status).toBe(429);
    expect(full.body).toMatchObject({ limit: 'max_vms', limit_value: 4, in_use: 4 });
  });

  test('when the fleet refuses a VM image, then the VM ends failed with a reason and its quota is released', async () => {
    const { token, tenantId } = await newTenant({ max_vms: 1 });
    await setFleet({ refused_images: ['bad-image'] });
    try {
      const refused = await spawn(token, { ...SMALL_VM, image: 'bad-image' });
      expect(refused.status).toBe(202);
      const vmId = refused.body.vm_id as string;
      const failed = await eventually(async () => {
        const got = await stack.request('GET', `/v1/vms/${vmId}`, { token });
        return got.body.status === 'failed' ? got : undefined;
      });
      expect(failed.body.failure_reason).toBe('image_refused');
      expect((await fleetVms(tenantId)).filter((vm) => vm.status !== 'destroyed')).toEqual([]);

      // The single slot is free again: a later spawn fits.
      await settled(tenantId);
      const later = await spawn(token);
      expect(later.status).toBe(202);
      const audit = await stack.request('GET', `/v1/audit?event_type=VM_FAILED&vm_id=${vmId}`, { token });
      expect(audit.body.items).toHaveLength(1);
      expect(audit.body.items[0].details).toMatchObject({ reason: 'image_refused' });
    } finally {
      await setFleet({ refused_images: [] });
    }
  });
});
