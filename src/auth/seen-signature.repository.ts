import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';

/**
 * Records an accepted signature; answers false when it was recorded before (a replay). One row per
 * signature in Postgres, so every API process sees what any other accepted. The row is kept until
 * `expiresAt`, when the signature's age alone gets it refused.
 */
export async function recordSignatureOnce(db: Kysely<Database>, signature: Buffer, expiresAt: Date): Promise<boolean> {
  const inserted = await db
    .insertInto('http_signatures_seen')
    .values({ signature_sha256: createHash('sha256').update(signature).digest('hex'), expires_at: expiresAt })
    .onConflict((oc) => oc.column('signature_sha256').doNothing())
    .returning('signature_sha256')
    .executeTakeFirst();
  return inserted !== undefined;
}

export async function deleteExpiredSignatures(db: Kysely<Database>, now: Date): Promise<number> {
  const result = await db.deleteFrom('http_signatures_seen').where('expires_at', '<=', now).executeTakeFirst();
  return Number(result.numDeletedRows);
}
