import { sql, type Kysely } from 'kysely';
import { SERVICE_ROLE } from './2026_11_23_0001_tenants_tokens_ledger';

/**
 * Tokens bound to their key (RFC 9421 HTTP Message Signatures, docs/bound-tokens.md):
 *
 * - api_tokens.key_binding: 'required' makes a token authenticate only requests signed with the
 *   Ed25519 key of its subject_pubkey; 'none' (every token so far) keeps bearer-only use;
 * - http_signatures_seen: the signatures the API has accepted, each kept until it is too old to be
 *   accepted anyway, so a replayed signature is refused by every API process.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable('api_tokens')
    .addColumn('key_binding', 'text', (c) => c.notNull().defaultTo('none'))
    .execute();
  await db.schema
    .alterTable('api_tokens')
    .addCheckConstraint('api_tokens_key_binding_check', sql`key_binding in ('none', 'required')`)
    .execute();
  await db.schema
    .alterTable('api_tokens')
    .addCheckConstraint('api_tokens_bound_has_key_check', sql`key_binding = 'none' or subject_pubkey is not null`)
    .execute();
  await db.schema
    .createTable('http_signatures_seen')
    .addColumn('signature_sha256', 'text', (c) => c.primaryKey())
    .addColumn('expires_at', 'timestamptz', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('http_signatures_seen_expires_idx').on('http_signatures_seen').column('expires_at').execute();
  await sql`grant select, insert, delete on http_signatures_seen to ${sql.id(SERVICE_ROLE)}`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('http_signatures_seen').execute();
  await db.schema.alterTable('api_tokens').dropConstraint('api_tokens_bound_has_key_check').execute();
  await db.schema.alterTable('api_tokens').dropConstraint('api_tokens_key_binding_check').execute();
  await db.schema.alterTable('api_tokens').dropColumn('key_binding').execute();
}
