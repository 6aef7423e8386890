import type { Kysely } from 'kysely';

/**
 * The event relay's fencing token (src/events/relay-leadership.ts, docs/events.md): every relay that
 * takes the lead increments its cursor row's leader_epoch, and moves the cursor only while the row
 * still holds its epoch. Existing rows start at 0; the first relay to lead after the upgrade takes 1.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('event_relay_cursor')
    .addColumn('leader_epoch', 'bigint', (c) => c.notNull().defaultTo(0))
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('event_relay_cursor').dropColumn('leader_epoch').execute();
}
