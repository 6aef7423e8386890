import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createFleetClient, type FleetClient } from '../../src/fleet/fleet-client';
import type { FleetSpawnRequest, FleetVm } from '../../src/fleet/fleet-types';
import type { SimControlsPatch } from '../../src/fleet-simulator/sim-controls';
import { loadSimulatorConfig } from '../../src/fleet-simulator/simulator-config';
import { startSimulator, type RunningSimulator } from '../../src/fleet-simulator/start-simulator';
import { configureFleet, fleetStats, fleetVms } from '../../src/fleet-simulator/sim-client';

// Each test gets its own state file and simulator on a random port, and closes it afterwards.
let dir: string;
const running: RunningSimulator[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fleet-sim-'));
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((sim) => sim.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(env: Record<string, string> = {}): Promise<RunningSimulator> {
  const config = loadSimulatorConfig({ FLEET_PORT: '0', FLEET_STATE_FILE: path.join(dir, 'fleet-state.json'), FLEET_BOOT_MS: '100', ...env });
  const sim = await startSimulator({ config, closeGraceMs: 1000 });
  running.push(sim);
  return sim;
}

function clientOf(sim: RunningSimulator, timeoutMs = 2000): FleetClient {
  return createFleetClient({ baseUrl: sim.url, timeoutMs });
}

function spawnRequest(overrides: Partial<FleetSpawnRequest> = {}): FleetSpawnRequest {
  return {
    request_id: randomUUID(),
    tenant_id: `t-${randomUUID().slice(0, 8)}`,
    vcpus: 2,
    memory_mb: 2048,
    storage_gb: 20,
    image: 'ubuntu-24.04',
    ...overrides,
  };
}

const simControl = (sim: RunningSimulator, patch: SimControlsPatch) => configureFleet(sim.url, patch);
const stats = (sim: RunningSimulator) => fleetStats(sim.url);

async function waitForStatus(client: FleetClient, vmId: string, status: FleetVm['status'], withinMs = 3000): Promise<FleetVm> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const vm = await client.get(vmId);
    if (vm?.status === status || Date.now() > deadline) return vm as FleetVm;
    await new Promise((r) => setTimeout(r, 25));
  }
}

function postSpawn(sim: RunningSimulator, body: unknown): Promise<Response> {
  return fetch(`${sim.url}/v1/vms`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('fleet simulator over HTTP', () => {
  test('when the same request_id is posted twice, then one VM exists, answered 201 then 200, and stats show one create', async () => {
    const sim = await start();
    const req = spawnRequest();

    const first = await postSpawn(sim, req);
    const second = await postSpawn(sim, req);

    expect([first.status, second.status]).toEqual([201, 200]);
    const [a, b] = (await Promise.all([first.json(), second.json()])) as FleetVm[];
    expect(b).toMatchObject({ vm_id: req.request_id, host_id: a?.host_id, created_at: a?.created_at });
    expect(await fleetVms(sim.url, req.tenant_id)).toHaveLength(1);
    expect((await stats(sim)).by_tenant[req.tenant_id]).toEqual({ spawn_calls: 2, creates: 1, destroys: 0 });
  });

  test('when boot_ms has passed, then a spawned VM is running with ready_at set', async () => {
    const sim = await start();
    const client = clientOf(sim);
    const req = spawnRequest();

    const spawned = await client.spawn(req);
    expect(spawned).toMatchObject({ vm_id: req.request_id, tenant_id: req.tenant_id, status: 'booting', ready_at: null });

    const vm = await waitForStatus(client, req.request_id, 'running');
    expect(vm).toMatchObject({ status: 'running', failure_reason: null });
    expect(Date.parse(vm.ready_at ?? '') - Date.parse(vm.created_at)).toBe(100);
  });

  test('when failure_rate is 1, then the VM ends failed with boot_failed', async () => {
    const sim = await start({ FLEET_FAILURE_RATE: '1' });
    const client = clientOf(sim);
    const req = spawnRequest();

    await client.spawn(req);

    expect(await waitForStatus(client, req.request_id, 'failed')).toMatchObject({ status: 'failed', failure_reason: 'boot_failed', ready_at: null });
  });

  test('when the image is refused, then the client throws a non-retryable FleetRejectedError image_refused', async () => {
    const sim = await start();
    await simControl(sim, { refused_images: ['windows-xp'] });

    const err = await clientOf(sim)
      .spawn(spawnRequest({ image: 'windows-xp' }))
      .catch((e: unknown) => e);

    expect(err).toMatchObject({ name: 'FleetRejectedError', code: 'image_refused', retryable: false });
    expect((await stats(sim)).creates).toBe(0);
  });

  test('when the body is invalid, then the answer is a 400 problem and the client throws invalid_request', async () => {
    const sim = await start();

    const res = await postSpawn(sim, { ...spawnRequest(), vcpus: 0 });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 400, code: 'invalid_request' });

    const err = await clientOf(sim)
      .spawn(spawnRequest({ request_id: 'not-a-uuid' }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'FleetRejectedError', code: 'invalid_request', retryable: false });
  });

  test('when the fleet is full, then spawn is refused with no_capacity, and a destroy frees the room', async () => {
    const sim = await start({ FLEET_HOSTS: '1', FLEET_HOST_VCPUS: '4' });
    const client = clientOf(sim);
    const tenant = spawnRequest().tenant_id;
    const first = await client.spawn(spawnRequest({ tenant_id: tenant, vcpus: 4 }));

    const res = await postSpawn(sim, spawnRequest({ tenant_id: tenant, vcpus: 1 }));
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: 'no_capacity' });
    await expect(client.spawn(spawnRequest({ tenant_id: tenant, vcpus: 1 }))).rejects.toMatchObject({ name: 'FleetRejectedError', code: 'no_capacity' });

    await client.destroy(first.vm_id);
    await expect(client.spawn(spawnRequest({ tenant_id: tenant, vcpus: 4 }))).resolves.toMatchObject({ status: 'booting' });
  });

  test('when a VM is destroyed twice, then both answers are destroyed, stats count one destroy, and an unknown id is null', async () => {
    const sim = await start();
    const client = clientOf(sim);
    const req = spawnRequest();
    await client.spawn(req);

    const first = await client.destroy(req.request_id);
    const second = await client.destroy(req.request_id);

    expect(first).toMatchObject({ vm_id: req.request_id, status: 'destroyed' });
    expect(second).toEqual(first);
    expect((await stats(sim)).by_tenant[req.tenant_id]).toMatchObject({ destroys: 1 });
    expect(await client.destroy(randomUUID())).toBeNull();
    expect(await client.get(randomUUID())).toBeNull();
  });

  test('when the simulator restarts on the same state file, then VMs and stats survive and a VM mid-boot still becomes running', async () => {
    const sim = await start({ FLEET_BOOT_MS: '300' });
    const req = spawnRequest();
    await clientOf(sim).spawn(req);
    await sim.close();

    const restarted = await start({ FLEET_BOOT_MS: '300' });
    const client = clientOf(restarted);

    expect(await client.get(req.request_id)).toMatchObject({ vm_id: req.request_id, tenant_id: req.tenant_id });
    expect(await waitForStatus(client, req.request_id, 'running')).toMatchObject({ status: 'running' });
    const again = await postSpawn(restarted, req);
    expect(again.status).toBe(200);
    expect((await stats(restarted)).by_tenant[req.tenant_id]).toMatchObject({ spawn_calls: 2, creates: 1 });
  });

  test('when fault http_500 is injected, then the client throws a retryable FleetUnavailableError', async () => {
    const sim = await start();
    await simControl(sim, { fault: 'http_500' });

    const err = await clientOf(sim)
      .spawn(spawnRequest())
      .catch((e: unknown) => e);

    expect(err).toMatchObject({ name: 'FleetUnavailableError', retryable: true });
    expect((err as Error).message).toMatch(/500 fault_injected/);
    expect((await stats(sim)).creates).toBe(0);
  });

  test('when fault timeout is injected, then the client throws FleetUnavailableError after its own timeout', async () => {
    const sim = await start();
    await simControl(sim, { fault: 'timeout' });
    const startedAt = Date.now();

    const err = await clientOf(sim, 300)
      .get(randomUUID())
      .catch((e: unknown) => e);

    const elapsed = Date.now() - startedAt;
    expect(err).toMatchObject({ name: 'FleetUnavailableError', retryable: true });
    expect((err as Error).message).toMatch(/no answer within 300 ms/);
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(2000);
  });

  test('when a request is held by the timeout fault, then closing the simulator still completes promptly', async () => {
    const sim = await start();
    await simControl(sim, { fault: 'timeout' });
    const held = clientOf(sim, 10_000)
      .get(randomUUID())
      .catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 100));

    const startedAt = Date.now();
    await sim.close();

    expect(Date.now() - startedAt).toBeLessThan(500);
    expect(await held).toMatchObject({ name: 'FleetUnavailableError' });
  });

  test('when nothing listens at the fleet URL, then the client throws FleetUnavailableError', async () => {
    const sim = await start();
    const url = sim.url;
    await sim.close();

    const err = await createFleetClient({ baseUrl: url, timeoutMs: 1000 })
      .get(randomUUID())
      .catch((e: unknown) => e);

    expect(err).toMatchObject({ name: 'FleetUnavailableError', retryable: true });
    expect((err as Error).cause).toBeDefined();
  });
});

function deleteVm(sim: RunningSimulator, vmId: string): Promise<Response> {
  return fetch(`${sim.url}/v1/vms/${vmId}`, { method: 'DELETE' });
}

describe('fleet simulator tombstones', () => {
  test('when a destroyed VM is created again, then the answer is 409 vm_tombstoned, the client throws FleetRejectedError vm_tombstoned, and no VM is made', async () => {
    const sim = await start();
    const client = clientOf(sim);
    const req = spawnRequest();
    await client.spawn(req);
    await client.destroy(req.request_id);

    const res = await postSpawn(sim, req);
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 409, code: 'vm_tombstoned' });
    const err = await client.spawn(req).catch((e: unknown) => e);

    expect(err).toMatchObject({ name: 'FleetRejectedError', code: 'vm_tombstoned', retryable: false });
    expect(await fleetVms(sim.url, req.tenant_id)).toEqual([expect.objectContaining({ vm_id: req.request_id, status: 'destroyed' })]);
    expect((await stats(sim)).by_tenant[req.tenant_id]).toEqual({ spawn_calls: 3, creates: 1, destroys: 1 });
  });

  test('when an id is destroyed before its create arrives, then each destroy answers 404 vm_not_found (client: null), and the later create is refused with no VM', async () => {
    const sim = await start();
    const client = clientOf(sim);
    const req = spawnRequest();

    const first = await deleteVm(sim, req.request_id);
    const second = await deleteVm(sim, req.request_id);
    expect([first.status, second.status]).toEqual([404, 404]);
    expect(await first.json()).toEqual(await second.json());
    expect(await client.destroy(req.request_id)).toBeNull();

    await expect(client.spawn(req)).rejects.toMatchObject({ name: 'FleetRejectedError', code: 'vm_tombstoned' });
    expect(await client.get(req.request_id)).toBeNull();
    expect(await fleetVms(sim.url, req.tenant_id)).toEqual([]);
    expect((await stats(sim)).by_tenant[req.tenant_id]).toEqual({ spawn_calls: 1, creates: 0, destroys: 0 });
  });

  test('when the simulator restarts on the same state file, then a destroyed VM and a bare tombstone still refuse their creates', async () => {
    const sim = await start();
    const destroyed = spawnRequest();
    const unseen = spawnRequest();
    await clientOf(sim).spawn(destroyed);
    await clientOf(sim).destroy(destroyed.request_id);
    await clientOf(sim).destroy(unseen.request_id);
    await sim.close();

    const client = clientOf(await start());

    await expect(client.spawn(destroyed)).rejects.toMatchObject({ code: 'vm_tombstoned' });
    await expect(client.spawn(unseen)).rejects.toMatchObject({ code: 'vm_tombstoned' });
    expect(await client.get(unseen.request_id)).toBeNull();
  });

  test('when the state file is a version 1 one from before tombstones, then it loads, and its destroyed VM still refuses its create', async () => {
    const vm = {
      vm_id: randomUUID(),
      tenant_id: 'acme',
      host_id: 'host-000',
      vcpus: 2,
      memory_mb: 2048,
      storage_gb: 20,
      image: 'ubuntu-24.04',
      created_at: 1,
      boot_done_at: 2,
      boot_fails: false,
      destroyed_at: 3,
    };
    const counts = { spawn_calls: 1, creates: 1, destroys: 1 };
    fs.writeFileSync(path.join(dir, 'fleet-state.json'), JSON.stringify({ version: 1, vms: [vm], stats: { ...counts, by_tenant: { acme: counts } } }));

    const sim = await start();
    const client = clientOf(sim);

    expect(await client.get(vm.vm_id)).toMatchObject({ status: 'destroyed' });
    await expect(
      client.spawn({ request_id: vm.vm_id, tenant_id: 'acme', vcpus: 2, memory_mb: 2048, storage_gb: 20, image: 'ubuntu-24.04' }),
    ).rejects.toMatchObject({ code: 'vm_tombstoned' });
    await sim.close();
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'fleet-state.json'), 'utf8'))).toMatchObject({ version: 2, tombstones: [] });
  });
});

describe('fleet client abort signal', () => {
  test('when the caller aborts an in-flight spawn, then it rejects at once with an AbortError carrying the reason, well before the call timeout', async () => {
    const sim = await start();
    await simControl(sim, { fault: 'timeout' });
    const controller = new AbortController();
    const reason = new Error('caller gave up');

    const startedAt = Date.now();
    const pending = clientOf(sim, 10_000)
      .spawn(spawnRequest(), controller.signal)
      .catch((e: unknown) => e);
    setTimeout(() => controller.abort(reason), 100);
    const err = await pending;

    expect(Date.now() - startedAt).toBeLessThan(1000);
    expect(err).toMatchObject({ name: 'AbortError', cause: reason });
    expect((err as Error).message).toMatch(/POST \/v1\/vms .* aborted by the caller/);
  });

  test('when the signal is already aborted, then spawn and get reject with an AbortError and the fleet is not asked to spawn', async () => {
    const sim = await start();
    const client = clientOf(sim);

    await expect(client.spawn(spawnRequest(), AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    await expect(client.get(randomUUID(), AbortSignal.abort())).rejects.toMatchObject({ name: 'AbortError' });
    expect((await stats(sim)).spawn_calls).toBe(0);
  });

  test('when the caller passes a signal that never aborts, then the per-call timeout still applies', async () => {
    const sim = await start();
    await simControl(sim, { fault: 'timeout' });

    const err = await clientOf(sim, 300)
      .spawn(spawnRequest(), new AbortController().signal)
      .catch((e: unknown) => e);

    expect(err).toMatchObject({ name: 'FleetUnavailableError', retryable: true });
    expect((err as Error).message).toMatch(/no answer within 300 ms/);
  });
});

describe('fleet simulator configuration', () => {
  test('when a variable is invalid, then loading fails naming it', () => {
    expect(() => loadSimulatorConfig({ FLEET_FAILURE_RATE: '1.5' })).toThrow(/FLEET_FAILURE_RATE/);
    expect(() => loadSimulatorConfig({ FLEET_HOSTS: 'eight' })).toThrow(/FLEET_HOSTS/);
  });

  test('when nothing is set, then the defaults apply and the result is frozen', () => {
    const config = loadSimulatorConfig({});
    expect(config).toMatchObject({
      port: 9231,
      host: '127.0.0.1',
      bootMs: 200,
      failureRate: 0,
      latencyMs: 0,
      hosts: 8,
      hostVcpus: 256,
      hostMemoryMb: 1_048_576,
      hostStorageGb: 100_000,
    });
    expect(config.stateFile).toBe(path.resolve('.data/fleet-state.json'));
    expect(Object.isFrozen(config)).toBe(true);
  });
});
