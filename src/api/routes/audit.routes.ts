import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../db/tables';
import { toAuditEntry, toTenantAuditEntry } from '../../ledger/audit-entry';
import type { StoredCheckpoint } from '../../ledger/checkpoint';
import { findAuditSeq, listAuditEvents } from '../../ledger/ledger.repository';
import { buildTenantProof } from '../../ledger/tenant-proof';
import { AUDIT_EVENT_TYPES } from '../../shared/audit-event-types';
import { tenantIdSchema } from '../../tenants/tenant.schemas';
import { callerOf, requireTenantAccess } from '../access';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';
import { isPlatformAdmin } from '../../auth/caller';

export const auditQuerySchema = z
  .object({
    tenant_id: tenantIdSchema.optional(),
    // No control characters: Postgres text cannot hold NUL, and no VM id has any.
    // (\p{Cc} spelled as its ranges, which OpenAPI tools can generate values for.)
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    vm_id: z.string().max(64).regex(/^[^\x00-\x1f\x7f-\x9f]*$/, 'must not contain control characters').optional(),
    event_type: z.enum(AUDIT_EVENT_TYPES).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    until: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    // The platform admin pages by seq (a Postgres bigint: 19 digits can still overflow it); a tenant
    // by the event id of the last entry it got, which says nothing about other tenants' entries.
    // (zod runs the refinement even when the regex failed, hence the guard before BigInt.)
    cursor: z
      .union([
        z.uuid(),
        z
          .string()
          .regex(/^\d{1,19}$/)
          .refine((value) => !/^\d{1,19}$/.test(value) || BigInt(value) <= 9_223_372_036_854_775_807n, 'is not a cursor from this API'),
      ])
      .optional(),
  })
  .strict();

/** A page cursor as a seq: an admin's seq as is, an event id looked up (within the tenant's entries). */
async function resolveCursor(db: Kysely<Database>, cursor: string | undefined, tenantId: string | undefined): Promise<string | undefined> {
  if (cursor === undefined) return undefined;
  const isSeq = /^\d+$/.test(cursor);
  if (isSeq && tenantId === undefined) return cursor;
  const seq = isSeq ? undefined : await findAuditSeq(db, cursor, tenantId);
  if (seq === undefined) throw problems.invalid('Invalid query', [{ field: 'cursor', message: 'is not a cursor from this listing' }]);
  return seq;
}

/** The newest checkpoint the worker signed, verified with its public key; null when there is none. */
export type LatestCheckpointSource = () => Promise<StoredCheckpoint | null>;

export const auditProofQuerySchema = z.object({ tenant_id: tenantIdSchema.optional() }).strict();

/** The worker's default signing period (LEDGER_CHECKPOINT_EVERY_SECONDS): a checkpoint comes within it. */
const PROOF_RETRY_AFTER_SECONDS = 10;

const proofUnavailable = (detail: string) => problems.dependencyUnavailable(detail, { retryAfterSeconds: PROOF_RETRY_AFTER_SECONDS });
/** Nothing is down: the tenant's entries are newer than the newest checkpoint, which comes within a signing period. */
const notAnchoredYet = (detail: string) => problems.notAnchoredYet(detail, PROOF_RETRY_AFTER_SECONDS);

export function auditRoutes({ db, latestCheckpoint }: { db: Kysely<Database>; latestCheckpoint?: LatestCheckpointSource }): Router {
  const router = Router();

  // The inclusion proof of the caller's tenant chain head in the newest signed checkpoint: with its
  // entries and the public key, all a tenant needs to verify them offline (service-fs verify-tenant).
  router.get('/v1/audit/proof', async (req, res) => {
    const query = parseOrThrow(auditProofQuerySchema, req.query, 'query');
    const caller = callerOf(req);
    const tenantId = isPlatformAdmin(caller) ? query.tenant_id : (caller.tenant_id ?? undefined);
    if (!tenantId) {
      if (isPlatformAdmin(caller)) throw problems.invalid('Invalid query', [{ field: 'tenant_id', message: 'is required for the platform admin' }]);
      throw problems.tenantNotFound();
    }
    if (!isPlatformAdmin(caller) && query.tenant_id !== undefined && query.tenant_id !== tenantId) throw problems.tenantNotFound();
    requireTenantAccess(req, tenantId, 'audit:read');
    // The checkpoint stream is a dependency like Postgres: NATS down is a 503, never a 500.
    const checkpoint = latestCheckpoint
      ? await latestCheckpoint().catch(() => {
          throw proofUnavailable('The ledger checkpoint stream cannot be read right now.');
        })
      : null;
    if (!checkpoint) throw notAnchoredYet('No signed ledger checkpoint yet: the worker signs one within a signing period after entries are written.');
    const outcome = await buildTenantProof(db, tenantId, checkpoint);
    if ('notCovered' in outcome) throw notAnchoredYet('The latest signed checkpoint does not cover this tenant yet: the worker signs one within a signing period.');
    if ('inconsistent' in outcome) throw proofUnavailable('The ledger does not match its latest signed checkpoint; the operator has been alerted by the signer.');
    res.json(outcome.proof);
  });

  router.get('/v1/audit', async (req, res) => {
    const query = parseOrThrow(auditQuerySchema, req.query, 'query');
    const caller = callerOf(req);
    const isAdmin = isPlatformAdmin(caller);
    // A tenant token reads its own tenant only; the platform admin may read all or filter by tenant.
    const tenantId = isAdmin ? query.tenant_id : (caller.tenant_id ?? undefined);
    if (!isAdmin) {
      if (!tenantId || (query.tenant_id !== undefined && query.tenant_id !== tenantId)) throw problems.tenantNotFound();
      requireTenantAccess(req, tenantId, 'audit:read');
    }
    const afterSeq = await resolveCursor(db, query.cursor, isAdmin ? undefined : tenantId);
    const rows = await listAuditEvents(db, {
      tenant_id: tenantId,
      vm_id: query.vm_id,
      event_type: query.event_type,
      since: query.since ? new Date(query.since) : undefined,
      until: query.until ? new Date(query.until) : undefined,
      after_seq: afterSeq,
      limit: query.limit + 1,
    });
    const page = rows.slice(0, query.limit);
    const last = rows.length > query.limit ? page[page.length - 1]! : null;
    if (isAdmin) res.json({ items: page.map(toAuditEntry), next_cursor: last?.seq ?? null });
    else res.json({ items: page.map(toTenantAuditEntry), next_cursor: last?.event_id ?? null });
  });

  return router;
}
