import { Router } from 'express';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Database } from '../../db/tables';
import { toAuditEntry } from '../../ledger/audit-entry';
import { listAuditEvents } from '../../ledger/ledger.repository';
import { AUDIT_EVENT_TYPES } from '../../shared/audit-event-types';
import { tenantIdSchema } from '../../tenants/tenant.schemas';
import { callerOf, requireTenantAccess } from '../access';
import { problems } from '../problem';
import { parseOrThrow } from '../validation';

export const auditQuerySchema = z
  .object({
    tenant_id: tenantIdSchema.optional(),
    // No control characters: Postgres text cannot hold NUL, and no VM id has any.
    vm_id: z.string().max(64).regex(/^[^\p{Cc}]*$/u, 'must not contain control characters').optional(),
    event_type: z.enum(AUDIT_EVENT_TYPES).optional(),
    since: z.iso.datetime({ offset: true }).optional(),
    until: z.iso.datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    // A ledger seq is a Postgres bigint: 19 digits can still overflow it.
    // (zod runs the refinement even when the regex failed, hence the guard before BigInt.)
    cursor: z
      .string()
      .regex(/^\d{1,19}$/)
      .refine((value) => !/^\d{1,19}$/.test(value) || BigInt(value) <= 9_223_372_036_854_775_807n, 'is not a cursor from this API')
      .optional(),
  })
  .strict();

export function auditRoutes({ db }: { db: Kysely<Database> }): Router {
  const router = Router();

  router.get('/v1/audit', async (req, res) => {
    const query = parseOrThrow(auditQuerySchema, req.query, 'query');
    const caller = callerOf(req);
    // A tenant token reads its own tenant only; the platform admin may read all or filter by tenant.
    const tenantId = caller.scope === 'service:admin' ? query.tenant_id : (caller.tenant_id ?? undefined);
    if (caller.scope !== 'service:admin') {
      if (!tenantId || (query.tenant_id !== undefined && query.tenant_id !== tenantId)) throw problems.tenantNotFound();
      requireTenantAccess(req, tenantId, 'audit:read');
    }
    const rows = await listAuditEvents(db, {
      tenant_id: tenantId,
      vm_id: query.vm_id,
      event_type: query.event_type,
      since: query.since ? new Date(query.since) : undefined,
      until: query.until ? new Date(query.until) : undefined,
      after_seq: query.cursor,
      limit: query.limit + 1,
    });
    const items = rows.slice(0, query.limit).map(toAuditEntry);
    res.json({ items, next_cursor: rows.length > query.limit ? items[items.length - 1]!.seq : null });
  });

  return router;
}
