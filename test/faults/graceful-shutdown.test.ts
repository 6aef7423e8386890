/**
 * SIGTERM drains: the API stops accepting connections but finishes the requests it is serving; the
 * worker stops polling but lets its in-flight activities finish (within its 20 s grace time), and
 * both exit 0. Nothing is lost across the restart that follows.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import { configureFleet } from '../../src/fleet-simulator/sim-client';
import { usePrivateStack } from '../helpers/private-stack';
import { LEDGER_CHAIN_LOCK_CLASS } from '../../src/ledger/ledger-append';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { call, createTenants, SMALL_VM } from './support/burst';
import { expectConvergence } from './support/convergence';
import { eventually } from '../helpers/eventually';

// A tenant's ledger chain lock (src/ledger/ledger-append.ts): holding it keeps its spawn request in flight.

describe('fault: SIGTERM drains the API and the worker', () => {
  const stack = usePrivateStack({ fleetBootMs: 200 });

  test('when the API gets SIGTERM while serving a spawn, then it refuses new connections, completes the spawn (202) and exits 0', async () => {
    const [tenant] = await createTenants(stack, 1, 'sa');
    const holder = new pg.Client({ connectionString: stack.migrationDatabaseUrl });
    await holder.connect();
    try {
      await holder.query('begin');
      // The tenant's ledger chain lock: its appends wait (appends of other tenants would not).
      await holder.query('select pg_advisory_xact_lock($1, hashtext($2))', [LEDGER_CHAIN_LOCK_CLASS, tenant!.tenantId]);
      const inFlight = call(stack.apiUrl, 'POST', '/v1/vms', {
        token: tenant!.token,
        body: SMALL_VM,
        headers: { 'idempotency-key': 'sa-drain' },
        timeoutMs: 60_000,
      });
      // The request has claimed its key and waits on the ledger.
      await eventually(
        async () =>
          (
            await sql<{ n: number }>`select count(*)::int as n from idempotency_keys where idempotency_key = 'sa-drain' and state = 'in_flight'`.execute(
              stack.db,
            )
          ).rows[0]?.n === 1,
        20_000,
        'the spawn to be in flight',
      );
      await sleep(500);

      const exited = stack.api.terminate(30_000);
      await sleep(500);
      await expect(call(stack.apiUrl, 'GET', '/healthz', { timeoutMs: 2_000 })).rejects.toThrow();
      await holder.query('commit');

      const answer = await inFlight;
      expect(answer.status).toBe(202);
      expect(answer.body.status).toBe('provisioning');
      expect(await exited).toEqual({ code: 0, signal: null });
      const key = await stack.db
        .selectFrom('idempotency_keys')
        .select(['state', 'response_status'])
        .where('idempotency_key', '=', 'sa-drain')
        .executeTakeFirstOrThrow();
      expect(key).toEqual({ state: 'done', response_status: 202 });
    } finally {
      await holder.end();
    }

    await stack.api.start();
    const report = await expectConvergence(
      stack,
      [tenant!.tenantId],
      [
        {
          kind: 'spawn',
          tenantId: tenant!.tenantId,
          key: 'sa-drain',
          vmId: (await stack.db.selectFrom('vms').select('vm_id').where('tenant_id', '=', tenant!.tenantId).executeTakeFirstOrThrow()).vm_id,
          attempts: [],
          final: 202,
        },
      ],
    );
    expect(report.byStatus).toEqual({ running: 1 });
  }, 180_000);

  test('when the worker gets SIGTERM during an activity, then the activity finishes, the worker exits 0, and nothing is lost', async () => {
    const [tenant] = await createTenants(stack, 1, 'sw');
    // Every fleet call takes 3 s: provisioning is in flight for several seconds.
    await configureFleet(stack.fleetUrl, { latency_ms: 3_000 });
    const spawned = await call(stack.apiUrl, 'POST', '/v1/vms', { token: tenant!.token, body: SMALL_VM, headers: { 'idempotency-key': 'sw-drain' } });
    expect(spawned.status).toBe(202);
    const vmId: string = spawned.body.vm_id;
    const client = await stack.temporalClient();
    await eventually(
      async () => {
        const { raw } = await client.workflow.getHandle(tenantWorkflowId(tenant!.tenantId)).describe();
        return raw.pendingActivities?.some((a) => a.activityType?.name === 'bootVm' && Number(a.attempt ?? 0) >= 1 && a.lastStartedTime);
      },
      20_000,
      'bootVm to start',
    );

    expect((await stack.db.selectFrom('vms').select('status').where('vm_id', '=', vmId).executeTakeFirstOrThrow()).status).toBe('provisioning');
    const exit = await stack.worker.terminate(40_000);
    // Exited on its own, not killed after the timeout, and the activity it was running had finished.
    expect(exit).toEqual({ code: 0, signal: null });
    const vm = await stack.db.selectFrom('vms').select('status').where('vm_id', '=', vmId).executeTakeFirstOrThrow();
    expect(vm.status).toBe('running');
    expect(stack.worker.process?.recentOutput().some((line) => line.includes('worker stopped'))).toBe(true);

    await configureFleet(stack.fleetUrl, { latency_ms: 0 });
    await stack.worker.start();
    const report = await expectConvergence(
      stack,
      [tenant!.tenantId],
      [{ kind: 'spawn', tenantId: tenant!.tenantId, key: 'sw-drain', vmId, attempts: [], final: 202 }],
    );
    expect(report.byStatus).toEqual({ running: 1 });
  }, 180_000);
});
