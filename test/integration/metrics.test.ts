import type { AddressInfo } from 'node:net';
import { getFreePort } from '../../src/devstack/free-port';
import { configureFleet } from '../../src/fleet-simulator/sim-client';
import { createLogger } from '../../src/logging/logger';
import { startMetricsServer } from '../../src/metrics/metrics-server';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

describe('Prometheus metrics', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when VMs are admitted and refused, then the internal /metrics endpoint shows requests by route, admissions by outcome and quota in use', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 1 });
    const accepted = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(accepted.status).toBe(202);
    expect((await stack.request('POST', '/v1/vms', { token, body: SMALL_VM })).status).toBe(429);

    const server = await startMetricsServer(stack.apiMetrics.registry, await getFreePort(), '127.0.0.1', createLogger({ name: 'test', level: 'silent' }));
    const response = await fetch(`http://127.0.0.1:${(server!.address() as AddressInfo).port}/metrics`);
    server!.close();
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(/vm_tenant_http_requests_total\{method="POST",route="\/v1\/vms",status="202"\} [1-9]/);
    expect(text).toMatch(/vm_tenant_http_request_duration_seconds_bucket\{le="[^"]+",method="POST",route="\/v1\/vms",status="429"\}/);
    expect(text).toMatch(/vm_tenant_admissions_total\{outcome="accepted"\} [1-9]/);
    expect(text).toMatch(/vm_tenant_admissions_total\{outcome="quota_exceeded"\} [1-9]/);
    expect(text).toContain(`vm_tenant_quota_vms_in_use{tenant_id="${tenantId}"} 1`);
    expect(text).toContain(`vm_tenant_quota_max_vms{tenant_id="${tenantId}"} 1`);
    // Route patterns, never raw paths with ids, label the series.
    expect(text).not.toContain(accepted.body.vm_id);
  });

  test('when anyone asks the public API for /metrics, then it is not there (per-tenant series stay internal)', async () => {
    expect((await stack.request('GET', '/metrics')).status).toBe(404);
  });

  test('when the worker spawns a VM, then its registry has fleet call latency, ledger append latency and published events', async () => {
    const { token } = await createTenant(stack);
    const vm = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vm.body.vm_id}`, { token })).body.status === 'running');
    const text = await eventually(async () => {
      const metrics = await stack.workerMetrics.registry.metrics();
      return /vm_tenant_nats_events_published_total [1-9]/.test(metrics) ? metrics : undefined;
    });
    expect(text).toMatch(/vm_tenant_fleet_call_duration_seconds_count\{operation="spawn",outcome="ok"\} [1-9]/);
    expect(text).toMatch(/vm_tenant_ledger_append_duration_seconds_count\{event_type="VM_RUNNING"\} [1-9]/);
  });

  test('when the fleet refuses a spawn, then the worker counts it as rejected, not as the fleet being unavailable', async () => {
    const { token } = await createTenant(stack);
    await configureFleet(stack.fleet.url, { refused_images: ['refused-image'] });
    try {
      const vm = await stack.request('POST', '/v1/vms', { token, body: { ...SMALL_VM, image: 'refused-image' } });
      await eventually(async () => (await stack.request('GET', `/v1/vms/${vm.body.vm_id}`, { token })).body.status === 'failed');
    } finally {
      await configureFleet(stack.fleet.url, { refused_images: [] });
    }
    const text = await stack.workerMetrics.registry.metrics();
    expect(text).toMatch(/vm_tenant_fleet_call_errors_total\{operation="spawn",kind="rejected"\} [1-9]/);
    expect(text).not.toMatch(/vm_tenant_fleet_call_errors_total\{operation="spawn",kind="unavailable"\}/);
  });
});
