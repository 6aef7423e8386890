import { Connection } from '@temporalio/client';
import { connect } from 'nats';
import pg from 'pg';
import { testEnv } from '../helpers/test-env';

describe('test stack prepared by global setup', () => {
  const env = testEnv();

  test('when connecting to Temporal, then the namespace answers and has the TenantId search attribute', async () => {
    const connection = await Connection.connect({ address: env.temporalAddress });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: env.temporalNamespace });
      expect(customAttributes?.TenantId).toBeDefined();
    } finally {
      await connection.close();
    }
  });

  test('when querying the database as the service login, then it is this run’s migrated database', async () => {
    const client = new pg.Client({ connectionString: env.databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string; usr: string; tables: string }>(
        "select current_database() as db, current_user as usr, (select count(*) from information_schema.tables where table_schema = 'public' and table_name = 'tenants') as tables",
      );
      expect(rows[0]?.db).toMatch(/^vm_tenant_test_\d+_[0-9a-f]+$/);
      expect(rows[0]?.usr).toBe('vm_tenant_app');
      expect(Number(rows[0]?.tables)).toBe(1);
    } finally {
      await client.end();
    }
  });

  test('when connecting to NATS, then JetStream is available', async () => {
    const nc = await connect({ servers: env.natsUrl });
    try {
      const info = await (await nc.jetstreamManager()).getAccountInfo();
      expect(info).toBeDefined();
    } finally {
      await nc.close();
    }
  });

  test('when reading TEST_RUN_ID, then it is a short id usable in names', () => {
    expect(env.testRunId).toMatch(/^[a-z0-9]{6,16}$/);
  });
});
