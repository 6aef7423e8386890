/**
 * kill -9 of the worker inside the admission window: the workflow has reserved the VM's quota and
 * its local activity is writing the VM row, which a held table lock keeps from committing. The
 * update was never accepted, so Temporal hands it to the restarted worker, which reserves and
 * writes again: the client gets its 202, Postgres holds the VM once, the fleet boots it once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { recordVmStep } from '../../src/activities/vm-audit';
import { vmIdForIdempotencyKey } from '../../src/ledger/deterministic-ids';
import { insertVmForLiveTenant } from '../../src/vms/vm.repository';
import { startPrivateStack, type PrivateStack } from '../helpers/private-stack';
import { call, createTenants, SMALL_VM, type ClientRequest, type HttpAnswer } from './support/burst';
import { expectConvergence } from './support/convergence';

describe('fault: kill -9 of the worker between reservation and the VM row', () => {
  let stack: PrivateStack;

  async function commitForTheDeadAttempt(tenantId: string, key: string): Promise<void> {
    const vmId = vmIdForIdempotencyKey(tenantId, key);
    const createdAt = new Date();
    const context = { request_id: 'dead-attempt', actor_token_id: null, actor_scope: null, source_ip: null, user_agent: null };
    await stack.db.transaction().execute(async (trx) => {
      await insertVmForLiveTenant(trx, { vm_id: vmId, tenant_id: tenantId, shape: { ...SMALL_VM, name: null }, created_at: createdAt });
      await recordVmStep(trx, { tenant_id: tenantId, vm_id: vmId, event_type: 'VM_SPAWN_REQUESTED', context, at: createdAt, details: { shape: { ...SMALL_VM, name: null } } });
    });
  }

  beforeAll(async () => {
    stack = await startPrivateStack({ fleetBootMs: 200 });
  }, 180_000);
  afterAll(async () => {
    await stack?.stop();
  }, 60_000);

  test.each([
    ['before the row committed', false],
    // kill -9 cannot be timed between that commit and the end of the workflow task, so the test
    // commits for the dead attempt what it would have: the row and its ledger entry.
    ['after the row committed', true],
  ])('when the worker dies while the admission writes the row (%s), then the spawn converges on one VM', async (label, committed) => {
    const [tenant] = await createTenants(stack, 1, `aw${committed ? 'c' : 'n'}`, { max_vms: 1, storage_quota_gb: 100 });
    const { tenantId, token } = tenant!;
    const blocker = new pg.Client({ connectionString: stack.migrationDatabaseUrl });
    await blocker.connect();
    const request: ClientRequest = { kind: 'spawn', tenantId, key: 'aw-spawn-1', vmId: '', attempts: [], final: null };
    try {
      await blocker.query('begin');
      await blocker.query('lock table vms in share row exclusive mode');
      let firstSettled: unknown = 'pending';
      const first = call(stack.apiUrl, 'POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': request.key }, timeoutMs: 120_000 }).catch((e: unknown) => e);
      void first.then((value) => (firstSettled = value));

      // The admission is inside the window: its insert waits on the lock.
      const deadline = Date.now() + 30_000;
      for (;;) {
        const { rows } = await blocker.query(`select count(*)::int as n from pg_locks where relation = 'vms'::regclass and mode = 'RowExclusiveLock' and not granted`);
        if (rows[0].n > 0) break;
        if (Date.now() > deadline) throw new Error(`the admission never reached the VM insert (first answer: ${JSON.stringify(firstSettled)})`);
        await sleep(50);
      }
      await stack.worker.kill();
      await blocker.query('rollback');
      if (committed) await commitForTheDeadAttempt(tenantId, request.key);
      await stack.worker.start();

      // The client retries with the same key until it has a final answer.
      const isFinal = (value: unknown): value is HttpAnswer => typeof value === 'object' && value !== null && 'status' in value && (value as HttpAnswer).status < 500 && (value as HttpAnswer).status !== 409;
      let answer = await first;
      for (let attempt = 0; !isFinal(answer); attempt++) {
        if (attempt > 60) throw new Error(`no final answer: ${JSON.stringify(answer)}`);
        await sleep(1000);
        answer = await call(stack.apiUrl, 'POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': request.key }, timeoutMs: 30_000 }).catch((e: unknown) => e);
      }
      expect(answer.status).toBe(202);
      request.vmId = answer.body.vm_id;
      request.final = 202;
      request.finalBody = answer.body;
    } finally {
      await blocker.end().catch(() => undefined);
    }
    expect(label).toBeTruthy();
    const report = await expectConvergence(stack, [tenantId], [request]);
    expect(report.vms).toBe(1);
    const rows = await stack.db.selectFrom('vms').select(['vm_id', 'status']).where('tenant_id', '=', tenantId).execute();
    expect(rows).toEqual([{ vm_id: request.vmId, status: 'running' }]);
  }, 240_000);
});
