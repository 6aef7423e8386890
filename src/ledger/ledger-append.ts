import { sql, type Kysely, type Transaction } from 'kysely';
import type { AuditEventType } from '../shared/audit-event-types';
import type { RequestContext } from '../shared/request-context';
import type { AuditEventRow, Database } from '../db/tables';
import { recordEntryTrace } from './entry-trace.repository';

/** The append protocol of the ledger: one entry onto its chain, under the chain's lock. */
export interface NewAuditEvent {
  event_id: string;
  event_type: AuditEventType;
  tenant_id: string | null;
  vm_id?: string | null;
  occurred_at?: Date;
  context: RequestContext;
  details?: Record<string, unknown>;
}

/**
 * Each chain (a tenant's, or the platform chain for entries without a tenant) has its own lock:
 * (LEDGER_CHAIN_LOCK_CLASS, hashtext(tenant id or '')), the same key the chain trigger takes
 * (migration 2026_11_27_0007). Appends to different chains do not wait for each other.
 */
export const LEDGER_CHAIN_LOCK_CLASS = 7_221_003;

/**
 * The chain lock could only be had by waiting while this transaction already holds another
 * chain's lock, in a LedgerWriter batch: two such batches could wait for each other. The unit's
 * savepoint is rolled back (which releases what it locked) and the writer runs it again first in
 * the next batch, where it may wait.
 */
export class LedgerChainBusyError extends Error {
  override readonly name = 'LedgerChainBusyError';
  constructor(readonly tenantId: string | null) {
    super(`the ledger chain of ${tenantId === null ? 'the platform' : `tenant ${tenantId}`} is busy and this transaction holds another chain's lock`);
  }
}

/**
 * Takes the chain's lock for the rest of the transaction. In a LedgerWriter batch (which sets
 * vm_tenant.ledger_batch) a transaction waits for a chain lock only while it holds no other, and
 * otherwise gives up with LedgerChainBusyError: batches of several tenants cannot deadlock on chain
 * locks, without a global lock order (the units of a batch do not name their tenants in advance).
 * Any other transaction simply waits, as for any lock.
 */
async function lockChain(trx: Transaction<Database>, tenantId: string | null): Promise<void> {
  const { rows } = await sql<{ outcome: 'locked' | 'busy' | 'wait' }>`
    select case
      when pg_try_advisory_xact_lock(${LEDGER_CHAIN_LOCK_CLASS}, hashtext(${tenantId ?? ''})) then 'locked'
      when current_setting('vm_tenant.ledger_batch', true) = 'on'
       and exists (select 1 from pg_locks where pid = pg_backend_pid() and locktype = 'advisory' and granted
                      and classid = ${LEDGER_CHAIN_LOCK_CLASS} and objsubid = 2) then 'busy'
      else 'wait' end as outcome`.execute(trx);
  const outcome = rows[0]?.outcome;
  if (outcome === 'busy') throw new LedgerChainBusyError(tenantId);
  if (outcome === 'wait') await sql`select pg_advisory_xact_lock(${LEDGER_CHAIN_LOCK_CLASS}, hashtext(${tenantId ?? ''}))`.execute(trx);
}

/**
 * `afterOwnTransition`: the caller made, in this transaction, the state change this entry records
 * (a conditional insert or update that only one transaction can make), so no committed entry has its
 * id and the read before the lock is skipped (the insert below still answers one if there is).
 */
export async function appendAuditEvent(
  db: Kysely<Database> | Transaction<Database>,
  event: NewAuditEvent,
  { afterOwnTransition = false }: { afterOwnTransition?: boolean } = {},
): Promise<AuditEventRow> {
  const run = async (trx: Transaction<Database>): Promise<AuditEventRow> => {
    // Every append to this chain waits for its lock, held to commit: keep the work under it minimal.
    // Entries are never changed once stored, so a repeat of a committed entry (a retried activity)
    // is returned by this read without waiting for the chain's lock; in a LedgerWriter batch its
    // caller still hears only once the batch commits.
    if (!afterOwnTransition) {
      const stored = await trx.selectFrom('audit_events').selectAll().where('event_id', '=', event.event_id).executeTakeFirst();
      if (stored) return stored;
    }
    await lockChain(trx, event.tenant_id);
    // One statement in the usual case: an entry with this id that another writer committed meanwhile
    // (it waits for one still committing) leaves the insert undone; the read after it, a statement
    // started after that commit, answers that entry. The chain trigger, run for the undone row too,
    // only draws a seq that then never exists, which the ledger allows (see commit-horizon.ts).
    const inserted = await trx
      .insertInto('audit_events')
      .values({
        event_id: event.event_id,
        tenant_id: event.tenant_id,
        vm_id: event.vm_id ?? null,
        event_type: event.event_type,
        occurred_at: event.occurred_at ?? new Date(),
        actor_token_id: event.context.actor_token_id,
        actor_scope: event.context.actor_scope,
        source_ip: event.context.source_ip,
        user_agent: event.context.user_agent,
        request_id: event.context.request_id,
        // The caller's own X-Request-Id rides in details (hashed like the rest of them).
        details: JSON.stringify(
          event.context.client_request_id ? { ...event.details, client_request_id: event.context.client_request_id } : (event.details ?? {}),
        ),
      })
      .onConflict((oc) => oc.column('event_id').doNothing())
      .returningAll()
      .executeTakeFirst();
    // Beside the entry, not in it: the trace its event continues (docs/tracing.md).
    if (inserted) await recordEntryTrace(trx, inserted.event_id);
    return inserted ?? trx.selectFrom('audit_events').selectAll().where('event_id', '=', event.event_id).executeTakeFirstOrThrow();
  };
  return db.isTransaction ? run(db as Transaction<Database>) : db.transaction().execute(run);
}
