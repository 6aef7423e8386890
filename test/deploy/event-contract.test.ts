import { connect, type NatsConnection } from 'nats';
import { configureFleet } from '../../src/fleet-simulator/sim-client';
import {
  channelFor,
  eventContract as contract,
  eventsContractProblems,
  hasContractSchema,
  validateEventPart as validate,
} from '../helpers/event-contract-check';
import { createTenant, eventually, SAMPLE_PUBKEY, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/**
 * The event contract (docs/asyncapi.yaml), checked as a consumer outside this repository would:
 * drive the public HTTP API through a tenant's life (tokens, a quota change, a VM that runs and is
 * destroyed, one the fleet refuses (VM_FAILED, by the simulator's refused_images fault), a spawn
 * refused for quota, the tenant deleted), read the tenant's subjects from the JetStream stream, and
 * validate every message against the document alone (test/helpers/event-contract-check.ts): its
 * subject against a channel address, its Nats-Msg-Id header and its payload against that channel's
 * message. Nothing of src/ is used to read or check the events.
 */
jest.setTimeout(180_000);

interface Received {
  subject: string;
  msgId: string | undefined;
  payload: Record<string, any>;
}

let stack: TestStack;
let nc: NatsConnection;

beforeAll(async () => {
  stack = await startTestStack({ fleetBootMs: 200 });
  nc = await connect({ servers: stack.config.natsUrl });
});

afterAll(async () => {
  await nc?.close();
  await stack?.close();
});

/** Every message on the tenant's subjects, from the start of the stream. */
async function tenantMessages(tenantId: string): Promise<Received[]> {
  const filter = `${stack.config.natsSubjectPrefix}.*.*.${tenantId}`;
  const consumer = await nc.jetstream().consumers.get(stack.config.natsStream, { filterSubjects: filter });
  const received: Received[] = [];
  const batch = await consumer.fetch({ max_messages: 500, expires: 2_000 });
  for await (const m of batch) received.push({ subject: m.subject, msgId: m.headers?.get('Nats-Msg-Id'), payload: m.json<Record<string, any>>() });
  return received;
}

describe('docs/asyncapi.yaml', () => {
  test('when reading the contract, then it is AsyncAPI 3 with a channel and a message for every event type', () => {
    expect(contract.asyncapi).toMatch(/^3\.\d+\.\d+$/);
    const names = Object.values(contract.components.messages).map((m) => m.name);
    expect(names).toHaveLength(11);
    for (const channel of Object.values(contract.channels)) {
      expect(channel.address).toMatch(/^\{prefix\}\.(tenant|token|vm)\.[a-z_]+\.\{owner\}$/);
      for (const message of Object.values(channel.messages)) expect(hasContractSchema(`${message.$ref}/payload`)).toBe(true);
    }
  });

  test('when a tenant lives its life through the API, then every event published for it matches the contract', async () => {
    const { tenantId, token } = await createTenant(stack, { max_vms: 2 });
    const api = (method: string, url: string, body?: unknown, as = token) => stack.request(method, url, { token: as, body });
    expect((await api('PATCH', `/v1/tenants/${tenantId}`, { max_vms: 1 }, stack.adminToken)).status).toBe(200);
    const child = await api('POST', `/v1/tenants/${tenantId}/tokens`, { subject_pubkey: SAMPLE_PUBKEY, scope: 'vm:read', expires_in_seconds: 600 });
    expect(child.status).toBe(201);
    expect((await api('DELETE', `/v1/tenants/${tenantId}/tokens/${child.body.token_id}`)).status).toBe(200);
    // The fleet refuses this image: the VM ends failed (VM_FAILED) and its quota is released.
    await configureFleet(stack.fleet.url, { refused_images: ['refused-image'] });
    try {
      const refused = await api('POST', '/v1/vms', { ...SMALL_VM, image: 'refused-image' });
      expect(refused.status).toBe(202);
      await eventually(async () => (await api('GET', `/v1/vms/${refused.body.vm_id}`)).body.status === 'failed', 30_000, 'the refused VM failed');
    } finally {
      await configureFleet(stack.fleet.url, { refused_images: [] });
    }
    const spawned = await api('POST', '/v1/vms', SMALL_VM);
    expect(spawned.status).toBe(202);
    const vmId = spawned.body.vm_id as string;
    await eventually(async () => (await api('GET', `/v1/vms/${vmId}`)).body.status === 'running', 30_000, 'the VM running');
    expect((await api('POST', '/v1/vms', SMALL_VM)).status).toBe(429); // max_vms 1: refused for quota
    expect((await api('DELETE', `/v1/vms/${vmId}`)).status).toBe(202);
    await eventually(async () => (await api('GET', `/v1/vms/${vmId}`)).body.status === 'destroyed', 30_000, 'the VM destroyed');
    await eventually(async () => (await api('DELETE', `/v1/tenants/${tenantId}`, undefined, stack.adminToken)).status === 200, 30_000, 'the tenant deleted');

    let received: Received[] = [];
    await eventually(
      async () => {
        received = await tenantMessages(tenantId);
        return received.some((m) => m.payload.event_type === 'TENANT_DELETED');
      },
      30_000,
      'the events published',
    );

    expect(eventsContractProblems(received)).toEqual([]);
    // The tenant's own sequence: 1, 2, 3, … in publish order, no gap, so nothing of other tenants shows.
    expect(received.map((m) => m.payload.tenant_seq)).toEqual(received.map((_, i) => String(i + 1)));
    const types = new Set(received.map((m) => m.payload.event_type));
    expect([...types].sort()).toEqual(
      [
        'QUOTA_CHANGED',
        'TENANT_CREATED',
        'TENANT_DELETED',
        'TOKEN_ISSUED',
        'TOKEN_REVOKED',
        'VM_DESTROYED',
        'VM_DESTROY_REQUESTED',
        'VM_FAILED',
        'VM_RUNNING',
        'VM_SPAWN_REJECTED',
        'VM_SPAWN_REQUESTED',
      ].sort(),
    );
  });

  test('when a payload breaks the contract, then the validation names it (the check can fail)', () => {
    const wrongType = {
      schema_version: 1,
      event_id: '7d7c1c5e-1c55-4e37-9d7e-2a1a9b7c1f00',
      event_type: 'VM_RUNNING',
      tenant_id: 'acme-corp',
      vm_id: null,
      request_id: null,
      occurred_at: '2026-12-06T00:00:00.000Z',
      tenant_seq: '1',
      actor: { token_id: null, scope: null },
      details: {},
    };
    expect(validate('vmRunning', 'payload', wrongType)).toEqual([expect.stringContaining("must have required property 'host_id'")]);
    const running = { ...wrongType, details: { host_id: 'h-1' } };
    expect(validate('vmRunning', 'payload', running)).toEqual([]);
    expect(validate('vmRunning', 'payload', { ...running, tenant_seq: 1 })).toEqual([expect.stringContaining('/tenant_seq must be string')]);
    // No platform-wide sequence on a tenant's subject, and a schema version always.
    expect(validate('vmRunning', 'payload', { ...running, ledger_seq: '42' })).toEqual([expect.stringContaining('must NOT have additional properties')]);
    const { schema_version: _omitted, ...unversioned } = running;
    expect(validate('vmRunning', 'payload', unversioned)).toEqual([expect.stringContaining("must have required property 'schema_version'")]);
    expect(validate('vmRunning', 'payload', { ...running, schema_version: 2 })).toEqual([expect.stringContaining('/schema_version must be equal to constant')]);
    expect(validate('vmFailed', 'payload', { ...running, event_type: 'VM_FAILED', details: { reason: 'image_refused', secret: 'x' } })).toEqual([
      expect.stringContaining('/details must NOT have additional properties'),
    ]);
    expect(channelFor('vmtenant.vm.rebooted.acme-corp')).toBeUndefined();
  });
});
