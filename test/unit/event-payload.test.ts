import type { AuditEventRow } from '../../src/db/tables';
import { EVENT_SCHEMA_VERSION, toLifecycleEvent } from '../../src/events/event-payload';
import { subjectFor } from '../../src/shared/event-subjects';
import { eventContractProblems } from '../helpers/event-contract-check';

/** A ledger row as the relay reads it: global seq 9041, the entry the tenant's 7th. */
const row = (overrides: Partial<AuditEventRow> = {}): AuditEventRow => ({
  seq: '9041',
  event_id: '3b8c2a4e-0f4d-4d7a-9d1e-5b9f0c2a7e11',
  tenant_id: 'acme-corp',
  vm_id: '9f1d2c3b-4a5e-4f60-8a7b-1c2d3e4f5a6b',
  event_type: 'VM_RUNNING',
  occurred_at: new Date('2026-11-23T23:20:57.412Z'),
  actor_token_id: 'tok_3Zk',
  actor_scope: 'service:tenant-admin',
  source_ip: '10.0.0.9',
  user_agent: 'curl/8',
  request_id: 'req-5e0a',
  details: { host_id: 'host-3' },
  prev_hash: 'a'.repeat(64),
  hash: 'b'.repeat(64),
  tenant_seq: '7',
  tenant_prev_hash: 'c'.repeat(64),
  tenant_hash: 'd'.repeat(64),
  ...overrides,
});

describe('toLifecycleEvent', () => {
  test('when a ledger row becomes a NATS payload, then it carries the schema version and the tenant sequence, and matches the contract', () => {
    const event = toLifecycleEvent(row());
    expect(event.schema_version).toBe(EVENT_SCHEMA_VERSION);
    expect(EVENT_SCHEMA_VERSION).toBe(1);
    expect(event.tenant_seq).toBe('7');
    const subject = subjectFor('vmtenant', 'VM_RUNNING', 'acme-corp');
    expect(eventContractProblems({ subject, msgId: event.event_id, payload: JSON.parse(JSON.stringify(event)) })).toEqual([]);
  });

  test('when a ledger row becomes a NATS payload, then nothing of the global ledger position, source address or chain hashes is in it', () => {
    const text = JSON.stringify(toLifecycleEvent(row()));
    expect(Object.keys(JSON.parse(text) as object)).not.toContain('ledger_seq');
    expect(text).not.toContain('9041');
    for (const hidden of ['10.0.0.9', 'curl/8', 'a'.repeat(64), 'b'.repeat(64)]) expect(text).not.toContain(hidden);
  });

  test('when a platform entry (no tenant) becomes a payload, then it carries the platform chain position and matches the _platform subject', () => {
    const event = toLifecycleEvent(row({ tenant_id: null, vm_id: null, event_type: 'TENANT_DELETED', details: {}, tenant_seq: '3' }));
    expect(event.tenant_seq).toBe('3');
    const subject = subjectFor('vmtenant', 'TENANT_DELETED', null);
    expect(subject).toBe('vmtenant.tenant.deleted._platform');
    expect(eventContractProblems({ subject, msgId: event.event_id, payload: JSON.parse(JSON.stringify(event)) })).toEqual([]);
  });
});
