import type { Kysely } from 'kysely';

/**
 * tenants.quota_version: +1 on every quota change, so the tenant workflow can tell a newer quota
 * from a stale one. The covering index serves the workflow's rebuild: totals and the VMs in flight
 * of one tenant without reading the table, at any number of VMs.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('tenants')
    .addColumn('quota_version', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema.createIndex('vms_tenant_status_vm_idx').on('vms').columns(['tenant_id', 'status', 'vm_id']).execute();
  await db.schema.dropIndex('vms_tenant_status_idx').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex('vms_tenant_status_idx').on('vms').columns(['tenant_id', 'status']).execute();
  await db.schema.dropIndex('vms_tenant_status_vm_idx').execute();
  await db.schema.alterTable('tenants').dropColumn('quota_version').execute();
}
