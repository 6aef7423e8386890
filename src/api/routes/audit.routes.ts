import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../db/tables';
import { AuditService, type CheckpointSeriesSource, type LatestCheckpointSource } from '../../ledger/audit.service';
import { AUDIT_EVENT_TYPES } from '../../shared/audit-event-types';
import { tenantIdSchema } from '../../tenants/tenant.schemas';
import { callerOf } from '../access';
import { actingTenant } from '../acting-tenant';
import { parseOrThrow } from '../validation';
import { isPlatformAdmin } from '../../auth/caller';

export type { CheckpointSeriesSource, LatestCheckpointSource } from '../../ledger/audit.service';

export const auditQuerySchema = z
  .object({
    tenant_id: tenantIdSchema.optional(),
    // No control characters: Postgres text cannot hold NUL, and no VM id has any.
    // (\p{Cc} spelled as its ranges, which OpenAPI tools can generate values for.)
    vm_id: z
      .string()
      .max(64)
      // eslint-disable-next-line no-control-regex -- matching control characters is the point
      .regex(/^[^\x00-\x1f\x7f-\x9f]*$/, 'must not contain control characters')
      .optional(),
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

/** A checkpoint's id: the hex SHA-256 link hash that the next checkpoint names as `previous`. */
const checkpointIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a checkpoint id (64 lowercase hex digits)');

export const auditProofQuerySchema = z.object({ tenant_id: tenantIdSchema.optional(), checkpoint: checkpointIdSchema.optional() }).strict();

export const auditCheckpointsQuerySchema = z
  .object({
    // The id of the last link the caller holds (a proof's checkpoint_id, or the previous page's next_cursor).
    cursor: checkpointIdSchema.optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

export function auditRoutes({
  db,
  latestCheckpoint,
  checkpointSeries,
}: {
  db: Kysely<Database>;
  latestCheckpoint?: LatestCheckpointSource;
  checkpointSeries?: CheckpointSeriesSource;
}): Router {
  const router = Router();
  const audit = new AuditService(db, latestCheckpoint, checkpointSeries);

  // The inclusion proof of the caller's tenant chain head in the newest signed checkpoint, or in the
  // one named by `checkpoint`: with its entries and the public key, all a tenant needs to verify
  // them offline (service-fs verify-tenant).
  router.get('/v1/audit/proof', async (req, res) => {
    const query = parseOrThrow(auditProofQuerySchema, req.query, 'query');
    const tenantId = actingTenant(req, { scope: 'audit:read', admin: 'named', named: query.tenant_id, otherTenantNamed: 'not-found' });
    res.json(await audit.proof(tenantId, query.checkpoint));
  });

  // The checkpoint series, link by link from its genesis (or after a checkpoint the caller holds):
  // what a tenant checks a newer checkpoint against an older one with, and what a witness follows.
  // Signed statements only: no tenant's entries, no ledger head.
  router.get('/v1/audit/checkpoints', async (req, res) => {
    const query = parseOrThrow(auditCheckpointsQuerySchema, req.query, 'query');
    actingTenant(req, { scope: 'audit:read', admin: 'named-or-all', otherTenantNamed: 'ignored' });
    res.json(await audit.checkpoints(query.cursor ?? null, query.limit));
  });

  // A tenant token reads its own tenant only; the platform admin reads all, or the tenant it names.
  router.get('/v1/audit', async (req, res) => {
    const query = parseOrThrow(auditQuerySchema, req.query, 'query');
    const tenantId = actingTenant(req, { scope: 'audit:read', admin: 'named-or-all', named: query.tenant_id, otherTenantNamed: 'not-found' });
    const { tenant_id: _tenant, since, until, ...filters } = query;
    const reader = isPlatformAdmin(callerOf(req)) ? { admin: true as const, tenantId } : { admin: false as const, tenantId: tenantId! };
    res.json(await audit.list(reader, { ...filters, since: since ? new Date(since) : undefined, until: until ? new Date(until) : undefined }));
  });

  return router;
}
