import { sql, type Kysely, type Transaction } from 'kysely';
import type { ApiTokenRow, Database, KeyBinding, NewApiToken } from '../db/tables';

type Db = Kysely<Database> | Transaction<Database>;

export interface TokenRecord {
  token_id: string;
  tenant_id: string | null;
  scope: string;
  subject_pubkey: string | null;
  key_binding: KeyBinding;
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
    key_binding: row.key_binding,
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
  subject_pubkey: string | null;
  key_binding: KeyBinding;
}

/**
 * A token that authenticates: known, not revoked, not expired, its tenant (if any) not deleted, and
 * no token above it revoked. Revocation revokes the whole subtree under a lock issuing also takes
 * (see lockTenantTokens), so the ancestor walk only matters for rows written before that lock
 * existed or by hand; it is a few primary-key lookups inside the same statement.
 */
export async function findActiveTokenByHash(db: Db, tokenHash: string, now: Date): Promise<ActiveToken | undefined> {
  return db
    .selectFrom('api_tokens as t')
    .leftJoin('tenants as tn', 'tn.tenant_id', 't.tenant_id')
    .select(['t.token_id', 't.tenant_id', 't.scope', 't.expires_at', 't.token_hash', 'tn.api_rate_limit_rpm', 't.subject_pubkey', 't.key_binding'])
    .where('t.token_hash', '=', tokenHash)
    .where('t.revoked_at', 'is', null)
    .where((eb) => eb.or([eb('t.expires_at', 'is', null), eb('t.expires_at', '>', now)]))
    .where((eb) => eb.or([eb('t.tenant_id', 'is', null), eb('tn.deleted_at', 'is', null)]))
    .where(({ not, exists }) =>
      not(
        exists(sql`(
          with recursive ancestors as (
            select parent.token_id, parent.parent_token_id, parent.revoked_at from api_tokens parent where parent.token_id = t.parent_token_id
            union all
            select up.token_id, up.parent_token_id, up.revoked_at from api_tokens up join ancestors on up.token_id = ancestors.parent_token_id
          )
          select 1 from ancestors where revoked_at is not null)`),
      ),
    )
    .executeTakeFirst();
}

/**
 * Serialises every issue and revocation of one tenant's tokens on its tenant row (NO KEY UPDATE, so
 * VM inserts' foreign-key checks are not blocked). Statements after it see every token committed
 * before the lock was granted, so a revocation's subtree cannot miss a child issued concurrently,
 * and an issue re-checking its parent after it cannot miss a revocation. Returns false when the
 * tenant does not exist or is deleted.
 */
export async function lockTenantTokens(trx: Transaction<Database>, tenantId: string): Promise<boolean> {
  const row = await trx
    .selectFrom('tenants')
    .select('tenant_id')
    .where('tenant_id', '=', tenantId)
    .where('deleted_at', 'is', null)
    .forNoKeyUpdate()
    .executeTakeFirst();
  return row !== undefined;
}

/** Whether the token can still issue: present, not revoked, not expired, no revoked ancestor. */
export async function isTokenUsable(db: Db, tokenId: string, now: Date): Promise<boolean> {
  const { rows } = await sql<{ usable: boolean }>`
    with recursive chain as (
      select token_id, parent_token_id, revoked_at, expires_at from api_tokens where token_id = ${tokenId}
      union all
      select up.token_id, up.parent_token_id, up.revoked_at, up.expires_at from api_tokens up join chain on up.token_id = chain.parent_token_id
    )
    select count(*) > 0 and bool_and(revoked_at is null and (expires_at is null or expires_at > ${now})) as usable from chain`.execute(db);
  return rows[0]?.usable === true;
}

/** Whether `tokenId` is `ancestorId` or was issued under it, transitively. */
export async function isInSubtreeOf(db: Db, tokenId: string, ancestorId: string): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    with recursive chain as (
      select token_id, parent_token_id from api_tokens where token_id = ${tokenId}
      union all
      select up.token_id, up.parent_token_id from api_tokens up join chain on up.token_id = chain.parent_token_id
    )
    select exists (select 1 from chain where token_id = ${ancestorId}) as found`.execute(db);
  return rows[0]?.found === true;
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
      await trx
        .insertInto('api_tokens')
        .values({ token_id: tokenId, tenant_id: null, scope: 'service:admin', token_hash: tokenHash, created_at: now })
        .execute();
    } else if (current.token_hash !== tokenHash || current.revoked_at !== null) {
      await trx.updateTable('api_tokens').set({ token_hash: tokenHash, revoked_at: null, created_at: now }).where('token_id', '=', tokenId).execute();
    }
  });
}

const BOOTSTRAP_LOCK_KEY = 7_221_003;
