import { randomUUID } from 'node:crypto';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { createTenantWorkflowClient } from '../../src/temporal/tenant-workflow-client';
import { fleetTenantStats } from '../../src/fleet-simulator/sim-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const CALL_TIMEOUT_MS = 1_500;
/** Scheduling slack on a shared 2-core machine; a missing deadline waits for ever, far beyond it. */
const SLACK_MS = 1_500;

async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now();
  const value = await call();
  return { value, ms: Date.now() - started };
}

/**
 * Every Temporal call of the API has a deadline (TEMPORAL_CALL_TIMEOUT_MS). Past it the request
 * answers 503 problem+json `dependency_unavailable` naming temporal, with Retry-After; it never
 * hangs and never answers 500.
 */
describe('Temporal call deadline', () => {
  let stack: TestStack;
  beforeAll(async () => {
    // No worker: the tenant workflow runs on the server but no workflow task is ever processed, so
    // a spawn update is never accepted, which is what an overloaded or stuck Temporal looks like.
    stack = await startTestStack({ withWorker: false, configOverrides: { TEMPORAL_CALL_TIMEOUT_MS: String(CALL_TIMEOUT_MS) } });
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when the spawn update is not accepted within the deadline, then POST /v1/vms answers 503 naming temporal in time, reads answer 200, and a retry with the same key after Temporal recovers converges on one VM', async () => {
    const { tenantId, token } = await createTenant(stack);
    const key = `deadline-${randomUUID()}`;
    const spawn = () => stack.request('POST', '/v1/vms', { token, body: SMALL_VM, headers: { 'Idempotency-Key': key } });

    const { value: refused, ms } = await timed(spawn);
    expect(refused.status).toBe(503);
    expect(ms).toBeLessThan(CALL_TIMEOUT_MS + SLACK_MS);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(refused.body).toMatchObject({ status: 503, code: 'dependency_unavailable', dependency: 'temporal' });
    expect(refused.body.detail).toMatch(/may have been admitted/);
    expect(refused.body.detail).toMatch(/Idempotency-Key/);

    // Reads do not need the workflow.
    expect((await stack.request('GET', '/v1/vms', { token })).status).toBe(200);
    expect((await stack.request('GET', `/v1/tenants/${tenantId}`, { token })).status).toBe(200);

    // Temporal "recovers": a worker picks up the workflow. The update the server still held may now
    // be admitted; the retry with the same key names the same VM either way.
    await stack.startWorker();
    const retried = await eventually(
      async () => {
        const answer = await spawn();
        return answer.status === 202 ? answer : null;
      },
      30_000,
      'the retried spawn to be admitted',
    );
    await eventually(async () => (await stack.request('GET', `/v1/vms/${retried.body.vm_id}`, { token })).body.status === 'running', 20_000, 'the VM to run');
    const listed = await stack.request('GET', '/v1/vms', { token });
    expect(listed.body.items.map((vm: { vm_id: string }) => vm.vm_id)).toEqual([retried.body.vm_id]);
    expect((await fleetTenantStats(stack.fleet.url, tenantId)).creates).toBe(1);
  }, 60_000);
});

describe('Temporal call deadline against a hung server', () => {
  // Accepts TCP connections and never answers a byte: a SIGSTOPped server or a partition, as the
  // client sees it (the kernel completes the handshake, nothing else happens).
  const sockets = new Set<Socket>();
  const blackHole = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  let connection: Connection;

  beforeAll(async () => {
    await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve));
    connection = Connection.lazy({ address: `127.0.0.1:${(blackHole.address() as AddressInfo).port}` });
  });
  afterAll(async () => {
    await connection.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => blackHole.close(() => resolve()));
  });

  test('when the Temporal server never answers, then every gateway call fails as Temporal unavailable within the deadline', async () => {
    const gateway = createTenantWorkflowClient({ client: new Client({ connection }), taskQueue: 'never-polled', callTimeoutMs: CALL_TIMEOUT_MS });
    const context = { request_id: randomUUID() } as never;
    const calls: Array<[string, () => Promise<unknown>]> = [
      [
        'spawn',
        () => gateway.spawn('hung-tenant', { vm_id: randomUUID(), shape: { ...SMALL_VM, name: null }, created_at: new Date().toISOString(), context } as never),
      ],
      ['destroy', () => gateway.destroy('hung-tenant', randomUUID(), context, 1)],
      ['changeQuota', () => gateway.changeQuota('hung-tenant', { max_vms: 5, storage_quota_gb: 50 } as never, context)],
      ['ensureStarted', () => gateway.ensureStarted('hung-tenant')],
    ];
    const outcomes = await Promise.all(
      calls.map(async ([name, call]) => {
        const started = Date.now();
        const error = await call().then(
          () => null,
          (e: unknown) => e as Error,
        );
        return { name, error: error?.name, ms: Date.now() - started };
      }),
    );
    for (const outcome of outcomes) {
      expect(outcome).toMatchObject({ error: 'TemporalUnavailableError' });
      expect(outcome.ms).toBeLessThan(CALL_TIMEOUT_MS + SLACK_MS);
    }
  }, 30_000);
});
