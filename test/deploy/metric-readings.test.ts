import { sql } from 'kysely';
import { appendAuditEvent } from '../../src/ledger/ledger-append';
import { relayCursorName } from '../../src/events/event-relay';
import { readEventRelayLag } from '../../src/metrics/event-relay-metrics';
import { readUnsettledVms } from '../../src/metrics/vm-settlement-metrics';
import { newAuditEvent } from '../helpers/audit-event.factory';
import { createLedgerTestDatabase, type LedgerTestDatabase } from '../helpers/ledger-database';

/**
 * The readings behind the new alerts (deploy/k8s/monitoring/prometheus-rule.yaml), on a real,
 * migrated scratch database as the service login reads it: the relay's lag from its cursor, and
 * the VMs on the way to a final status with the age of the oldest.
 */
jest.setTimeout(60_000);

let database: LedgerTestDatabase;
beforeAll(async () => {
  database = await createLedgerTestDatabase('metrics');
});
afterAll(async () => database?.drop());

describe('metric readings', () => {
  test('when entries wait past the relay cursor, then the lag counts them and ages the oldest; once the cursor reaches them, it is zero', async () => {
    const db = database.serviceDb();
    const prefix = 'metricsprefix';
    expect(await readEventRelayLag(db, prefix)).toEqual({ entries: 0, seconds: 0 });
    const first = await appendAuditEvent(db, newAuditEvent());
    await appendAuditEvent(db, newAuditEvent());
    const lag = await readEventRelayLag(db, prefix);
    expect(lag.entries).toBe(2);
    expect(lag.seconds).toBeGreaterThanOrEqual(0);
    await sql`insert into event_relay_cursor (name, last_seq) values (${relayCursorName(prefix)}, ${first.seq})`.execute(db);
    expect((await readEventRelayLag(db, prefix)).entries).toBe(1);
    await sql`update event_relay_cursor set last_seq = (select max(seq) from audit_events) where name = ${relayCursorName(prefix)}`.execute(db);
    expect(await readEventRelayLag(db, prefix)).toEqual({ entries: 0, seconds: 0 });
  });

  test('when VMs wait in requested, provisioning and destroying, then each status reports its count and how long its oldest has not moved; final statuses are not counted', async () => {
    const admin = database.adminDb();
    const row = (vm: string, status: string, minutesAgo: number) => ({
      vm_id: vm,
      tenant_id: 'acme',
      name: null,
      vcpus: 1,
      memory_mb: 512,
      storage_gb: 1,
      image: 'debian-12',
      status,
      failure_reason: null,
      created_at: new Date(Date.now() - minutesAgo * 60_000),
      updated_at: new Date(Date.now() - minutesAgo * 60_000),
    });
    await admin
      .insertInto('tenants')
      .values({
        tenant_id: 'acme',
        display_name: 'Acme',
        max_vms: 10,
        storage_quota_gb: 100,
        api_rate_limit_rpm: 60,
        created_at: new Date(),
        updated_at: new Date(),
      })
      .execute();
    await admin
      .insertInto('vms')
      .values([
        row('vm-1', 'requested', 10),
        row('vm-2', 'requested', 1),
        row('vm-3', 'provisioning', 3),
        row('vm-4', 'running', 60),
        row('vm-5', 'destroyed', 90),
      ])
      .execute();
    const readings = await readUnsettledVms(database.serviceDb());
    expect(readings.map((r) => ({ ...r, oldestSeconds: Math.round(r.oldestSeconds / 60) }))).toEqual([
      { status: 'requested', count: 2, oldestSeconds: 10 },
      { status: 'provisioning', count: 1, oldestSeconds: 3 },
      { status: 'destroying', count: 0, oldestSeconds: 0 },
    ]);
  });
});
