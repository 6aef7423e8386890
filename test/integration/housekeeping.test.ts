import { createDatabase } from '../../src/db/database';
import { claimIdempotencyKey, deleteExpiredIdempotencyKeys, IDEMPOTENCY_KEY_TTL_MS } from '../../src/vms/idempotency.repository';
import { testEnv, uniqueName } from '../helpers/test-env';

describe('idempotency key retention', () => {
  const db = createDatabase(testEnv().databaseUrl, { max: 2 });
  afterAll(async () => {
    await db.destroy();
  });

  test('when a key is past its 24 h retention, then housekeeping purges it and keeps the fresh ones', async () => {
    const tenant = uniqueName('hk');
    const longAgo = new Date(Date.now() - IDEMPOTENCY_KEY_TTL_MS - 60_000);
    await claimIdempotencyKey(db, tenant, 'old', 'fp', longAgo);
    await claimIdempotencyKey(db, tenant, 'new', 'fp', new Date());
    expect(await deleteExpiredIdempotencyKeys(db, new Date())).toBeGreaterThanOrEqual(1);
    const left = await db.selectFrom('idempotency_keys').select('idempotency_key').where('tenant_id', '=', tenant).execute();
    expect(left.map((row) => row.idempotency_key)).toEqual(['new']);
  });

  test('when an expired key is used again, then the request is processed afresh', async () => {
    const tenant = uniqueName('hk');
    const longAgo = new Date(Date.now() - IDEMPOTENCY_KEY_TTL_MS - 60_000);
    await claimIdempotencyKey(db, tenant, 'k', 'first', longAgo);
    expect(await claimIdempotencyKey(db, tenant, 'k', 'second', new Date())).toEqual({ claimed: true });
  });
});
