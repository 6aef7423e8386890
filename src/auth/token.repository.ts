import { sql, type Kysely, type Transaction } from 'kysely';
import type { ApiTokenRow, Database, NewApiToken } from '../db/tables';

type Db = Kysely<Database> | Transaction<Database>;

export interface TokenRecord {
  token_id: string;
  tenant_id: string | null;
  scope: string;
  subject_pubkey: string | null;
  parent_token_id: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

/** The public view of a token: never the secret, never its hash. */
export function toTokenRecord(row: ApiTokenRow): TokenRecord {
  return {
    token_id: row.token_id,
    tenant_id: row.tenant_id,
    scope: row.scope,
    subject_pubkey: row.subject_pubkey,
    parent_token_id: row.parent_token_id,
    created_at: row.created_at.toISOString(),
    expires_at: row.expires_at ? row.expires_at.toISOString() : null,
    revoked_at: row.revoked_at ? row.revoked_at.toISOString() : null,
  };
}

export interface ActiveToken {
  token_id: string;
  tenant_id: string | null;
  scope: string;
  expires_at: Date | null;
  token_hash: string;
  api_rate_limit_rpm: number | null;
}

/** A token that authenticates: known, not revoked, not expired, and its tenant (if any) not deleted. */
export async function findActiveTokenByHash(db: Db, tokenHash: string, now: Date): Promise<ActiveToken | undefined> {
  return db
    .selectFrom('api_tokens as t')
    .leftJoin('tenants as tn', 'tn.tenant_id', 't.tenant_id')
    .select(['t.token_id', 't.tenant_id', 't.scope', 't.expires_at', 't.token_hash', 'tn.api_rate_limit_rpm'])
    .where('t.token_hash', '=', tokenHash)
    .where('t.revoked_at', 'is', null)
    .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', now)]))
    .where((eb) => eb.or([eb('t.tenant_id', 'is', null), eb('tn.deleted_at', 'is', null)]))
    .executeTakeFirst();
}

export async function insertToken(db: Db, token: NewApiToken): Promise<ApiTokenRow> {
  return db.insertInto('api_tokens').values(token).returningAll().executeTakeFirstOrThrow();
}

export async function listTenantTokens(db: Db, tenantId: string, limit: number, after: string | undefined): Promise<ApiTokenRow[]> {
  let q = db.selectFrom('api_tokens').selectAll().where('tenant_id', '=', tenantId);
  if (after !== undefined) q = q.where('token_id', '>', after);
  return q.orderBy('token_id').limit(limit).execute();
}

export async function findTenantToken(db: Db, tenantId: string, tokenId: string): Promise<ApiTokenRow | undefined> {
  return db.selectFrom('api_tokens').selectAll().where('tenant_id', '=', tenantId).where('token_id', '=', tokenId).executeTakeFirst();
}

/** Revokes a token and every token issued under it, transitively; returns the ids newly revoked. */
export async function revokeTokenTree(db: Db, tokenId: string, now: Date): Promise<string[]> {
  const result = await sql<{ token_id: string }>`
    with recursive tree as (
      select token_id from api_tokens where token_id = ${tokenId}
      union
      select child.token_id from api_tokens child join tree on child.parent_token_id = tree.token_id
    )
    update api_tokens set revoked_at = ${now}
    where token_id in (select token_id from tree) and revoked_at is null
    returning token_id`.execute(db);
  return result.rows.map((row) => row.token_id).sort();
}

/** Points the bootstrap admin token at the given hash (ADMIN_TOKEN rotation replaces the old one). */
export async function upsertBootstrapAdminToken(db: Kysely<Database>, tokenId: string, tokenHash: string, now: Date): Promise<void> {
  // Serialised, because several API processes may start at once with the same token.
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK_KEY})`.execute(trx);
    const current = await trx.selectFrom('api_tokens').select(['token_hash', 'revoked_at']).where('token_id', '=', tokenId).executeTakeFirst();
    if (!current) {
      await trx.insertInto('api_tokens').values({ token_id: tokenId, tenant_id: null, scope: 'service:admin', token_hash: tokenHash, created_at: now }).execute();
    } else if (current.token_hash !== tokenHash || current.revoked_at !== null) {
      await trx.updateTable('api_tokens').set({ token_hash: tokenHash, revoked_at: null, created_at: now }).where('token_id', '=', tokenId).execute();
    }
  });
}

const BOOTSTRAP_LOCK_KEY = 7_221_003;
