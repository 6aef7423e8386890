import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, TenantRow } from '../db/tables';
import type { VersionedQuota } from '../shared/tenant-workflow.messages';
import type { CreateTenantInput, UpdateTenantInput } from './tenant.schemas';

type Db = Kysely<Database> | Transaction<Database>;

export interface TenantRecord {
  tenant_id: string;
  display_name: string;
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
}

export function toTenantRecord(row: TenantRow): TenantRecord {
  return {
    tenant_id: row.tenant_id,
    display_name: row.display_name,
    max_vms: row.max_vms,
    storage_quota_gb: row.storage_quota_gb,
    api_rate_limit_rpm: row.api_rate_limit_rpm,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    deleted_at: row.deleted_at ? row.deleted_at.toISOString() : null,
  };
}

/** Inserts the tenant; returns null when the id is taken (ids of deleted tenants stay taken). */
export async function insertTenant(db: Db, input: CreateTenantInput, createdByTokenId: string, now: Date): Promise<TenantRow | null> {
  const row = await db
    .insertInto('tenants')
    .values({ ...input, created_at: now, updated_at: now, created_by_token_id: createdByTokenId })
    .onConflict((oc) => oc.column('tenant_id').doNothing())
    .returningAll()
    .executeTakeFirst();
  return row ?? null;
}

export async function findTenant(db: Db, tenantId: string, options: { includeDeleted?: boolean; forUpdate?: boolean } = {}): Promise<TenantRow | undefined> {
  let q = db.selectFrom('tenants').selectAll().where('tenant_id', '=', tenantId);
  if (!options.includeDeleted) q = q.where('deleted_at', 'is', null);
  // NO KEY UPDATE, not UPDATE: it must not block the KEY SHARE lock a VM insert's foreign key takes
  // (a ledger batch holding the chain lock may be waiting for it).
  if (options.forUpdate) q = q.forNoKeyUpdate();
  return q.executeTakeFirst();
}

export async function listTenants(db: Db, limit: number, after: string | undefined): Promise<TenantRow[]> {
  let q = db.selectFrom('tenants').selectAll().where('deleted_at', 'is', null);
  if (after !== undefined) q = q.where('tenant_id', '>', after);
  return q.orderBy('tenant_id').limit(limit).execute();
}

/** Applies the changes; a change of either quota also moves quota_version on by one. */
export async function updateTenant(db: Db, tenantId: string, changes: UpdateTenantInput, now: Date): Promise<TenantRow> {
  const quotaChanged = changes.max_vms !== undefined || changes.storage_quota_gb !== undefined;
  return db
    .updateTable('tenants')
    .set({ ...changes, updated_at: now, ...(quotaChanged ? { quota_version: sql<number>`quota_version + 1` } : {}) })
    .where('tenant_id', '=', tenantId)
    .returningAll()
    .executeTakeFirstOrThrow();
}

export function versionedQuotaOf(row: TenantRow): VersionedQuota {
  return { max_vms: row.max_vms, storage_quota_gb: row.storage_quota_gb, version: row.quota_version };
}

export async function markTenantDeleted(db: Db, tenantId: string, now: Date): Promise<TenantRow> {
  return db.updateTable('tenants').set({ deleted_at: now, updated_at: now }).where('tenant_id', '=', tenantId).returningAll().executeTakeFirstOrThrow();
}
