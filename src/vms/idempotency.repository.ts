import { sql, type Kysely } from 'kysely';
import type { Database, IdempotencyKeyRow } from '../db/tables';

export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000;
// A request holding its key longer than this is taken to have died with its API process.
export const IN_FLIGHT_LEASE_MS = 60 * 1000;

export type ClaimResult = { claimed: true } | { claimed: false; existing: IdempotencyKeyRow };

/** Claims the key for this request, taking over keys that expired or whose holder died. */
export async function claimIdempotencyKey(db: Kysely<Database>, tenantId: string, key: string, fingerprint: string, now: Date): Promise<ClaimResult> {
  // A fresh claim, whether the key is new or taken over.
  const claim = {
    request_fingerprint: fingerprint,
    state: 'in_flight' as const,
    response_status: null,
    response_body: null,
    created_at: now,
    expires_at: new Date(now.getTime() + IDEMPOTENCY_KEY_TTL_MS),
  };
  const claimed = await db
    .insertInto('idempotency_keys')
    .values({ tenant_id: tenantId, idempotency_key: key, ...claim })
    .onConflict((oc) =>
      oc
        .columns(['tenant_id', 'idempotency_key'])
        .doUpdateSet(claim)
        // Take over only an expired key, or an abandoned in-flight claim of the same request.
        .where((eb) =>
          eb.or([
            eb('idempotency_keys.expires_at', '<=', now),
            eb.and([
              eb('idempotency_keys.state', '=', 'in_flight'),
              eb('idempotency_keys.request_fingerprint', '=', fingerprint),
              eb('idempotency_keys.created_at', '<=', new Date(now.getTime() - IN_FLIGHT_LEASE_MS)),
            ]),
          ]),
        ),
    )
    .returning(sql<number>`1`.as('claimed'))
    .executeTakeFirst();
  if (claimed) return { claimed: true };
  const existing = await db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('tenant_id', '=', tenantId)
    .where('idempotency_key', '=', key)
    .executeTakeFirstOrThrow();
  return { claimed: false, existing };
}

export async function completeIdempotencyKey(db: Kysely<Database>, tenantId: string, key: string, status: number, body: unknown): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ state: 'done', response_status: status, response_body: JSON.stringify(body) })
    .where('tenant_id', '=', tenantId)
    .where('idempotency_key', '=', key)
    .execute();
}

export async function releaseIdempotencyKey(db: Kysely<Database>, tenantId: string, key: string): Promise<void> {
  await db.deleteFrom('idempotency_keys').where('tenant_id', '=', tenantId).where('idempotency_key', '=', key).where('state', '=', 'in_flight').execute();
}

export async function deleteExpiredIdempotencyKeys(db: Kysely<Database>, now: Date): Promise<number> {
  const result = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
