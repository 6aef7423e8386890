import { sql, type Kysely } from 'kysely';

/**
 * The admission protocol of docs/admission-protocol.md: a spawn is recorded `requested` before the
 * tenant workflow decides it, and a refused one becomes `rejected`.
 *
 * - vms.admission_attempt: which request for this VM id the row holds (a refused request asked again
 *   under the same Idempotency-Key is the next attempt); it names the spawn's Temporal update id;
 * - vms_status_check: the statuses a row may hold;
 * - vms_undecided_idx: the admission resolver's scan for requests nobody saw decided;
 * - tenants.admission_epoch: the start time (ms) of the tenant workflow's run that last rebuilt from
 *   Postgres, only ever raised; a boot confirms a row only under its run's epoch, so an activity of a
 *   lost run cannot confirm what it admitted.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('vms')
    .addColumn('admission_attempt', 'integer', (c) => c.notNull().defaultTo(1))
    .execute();
  await db.schema
    .alterTable('vms')
    .addCheckConstraint('vms_status_check', sql`status in ('requested', 'provisioning', 'running', 'destroying', 'destroyed', 'failed', 'rejected')`)
    .execute();
  await sql`create index vms_undecided_idx on vms (updated_at) where status in ('requested', 'destroying')`.execute(db);
  await db.schema
    .alterTable('tenants')
    .addColumn('admission_epoch', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('tenants').dropColumn('admission_epoch').execute();
  await sql`drop index vms_undecided_idx`.execute(db);
  await db.schema.alterTable('vms').dropConstraint('vms_status_check').execute();
  await db.schema.alterTable('vms').dropColumn('admission_attempt').execute();
}
