import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, TenantRow } from '../db/tables';
import { appendAuditEvent } from '../ledger/ledger-append';
import type { Logger } from '../logging/logger';
import { NotFoundError, QuotaNotAppliedError, TenantExistsError } from '../shared/domain-errors';
import type { RequestContext } from '../shared/request-context';
import { workflowRefusal } from '../shared/workflow-failures';
import type { TenantWorkflowGateway } from './tenant-workflow-gateway';
import { findTenant, insertTenant, listTenants, toTenantRecord, updateTenant, versionedQuotaOf, type TenantRecord } from './tenant.repository';
import type { CreateTenantInput, UpdateTenantInput } from './tenant.schemas';

export interface TenantServiceDeps {
  db: Kysely<Database>;
  workflows: TenantWorkflowGateway;
  log: Logger;
  now: () => Date;
  /** Called after a deletion, so this process refuses the tenant's tokens at once (its token cache's clear). */
  tokensRevoked?: () => void;
}

/**
 * The tenant protocols. Creation needs only Postgres (the workflow starts in the background, and
 * on the tenant's first VM request anyway). A quota change is versioned in Postgres and answered
 * once the workflow holds it. A deletion goes through the workflow, which stops admitting and
 * records the deletion itself, so no spawn can slip in between.
 */
export function createTenantService({ db, workflows, log, now, tokensRevoked }: TenantServiceDeps) {
  /** Hands the stored quota to the workflow, which keeps the newest version it has seen. */
  async function applyQuota(tenant: TenantRow, context: RequestContext): Promise<void> {
    try {
      await workflows.changeQuota(tenant.tenant_id, versionedQuotaOf(tenant), context);
    } catch (error) {
      const refusal = workflowRefusal(error);
      if (refusal) throw refusal;
      log.warn({ err: error, tenant_id: tenant.tenant_id, request_id: context.request_id }, 'quota stored but not yet applied by the tenant workflow');
      throw new QuotaNotAppliedError(tenant.quota_version, { cause: error });
    }
  }

  return {
    async create(input: CreateTenantInput, createdByTokenId: string, context: RequestContext): Promise<TenantRecord> {
      const at = now();
      const created = await db.transaction().execute(async (trx) => {
        const row = await insertTenant(trx, input, createdByTokenId, at);
        if (!row) return null;
        await appendAuditEvent(trx, {
          event_id: randomUUID(),
          event_type: 'TENANT_CREATED',
          tenant_id: row.tenant_id,
          occurred_at: at,
          context,
          details: { display_name: row.display_name, max_vms: row.max_vms, storage_quota_gb: row.storage_quota_gb, api_rate_limit_rpm: row.api_rate_limit_rpm },
        });
        return row;
      });
      if (!created) throw new TenantExistsError(input.tenant_id);
      // Started now so operators see the tenant in the Temporal UI at once; never awaited.
      workflows.ensureStarted(created.tenant_id).catch((error: unknown) => {
        log.warn({ err: error, tenant_id: created.tenant_id, request_id: context.request_id }, 'tenant workflow not started; it will start on first use');
      });
      return toTenantRecord(created);
    },

    async list(limit: number, after: string | undefined): Promise<{ items: TenantRecord[]; next_cursor: string | null }> {
      const rows = await listTenants(db, limit + 1, after);
      const items = rows.slice(0, limit).map(toTenantRecord);
      return { items, next_cursor: rows.length > limit ? items[items.length - 1]!.tenant_id : null };
    },

    async get(tenantId: string): Promise<TenantRecord> {
      const row = await findTenant(db, tenantId);
      if (!row) throw new NotFoundError('tenant');
      return toTenantRecord(row);
    },

    async update(tenantId: string, changes: UpdateTenantInput, changedByTokenId: string, context: RequestContext): Promise<TenantRecord> {
      const at = now();
      const updated = await db.transaction().execute(async (trx) => {
        const before = await findTenant(trx, tenantId, { forUpdate: true });
        if (!before) return null;
        const after = await updateTenant(trx, tenantId, changes, at);
        await appendAuditEvent(trx, {
          event_id: randomUUID(),
          event_type: 'QUOTA_CHANGED',
          tenant_id: tenantId,
          occurred_at: at,
          context,
          details: { before: pickQuota(before), after: pickQuota(after), changed_by_token_id: changedByTokenId },
        });
        return after;
      });
      if (!updated) throw new NotFoundError('tenant');
      if (changes.max_vms !== undefined || changes.storage_quota_gb !== undefined) await applyQuota(updated, context);
      return toTenantRecord(updated);
    },

    async delete(tenantId: string, context: RequestContext): Promise<TenantRecord> {
      const tenant = await findTenant(db, tenantId);
      if (!tenant) throw new NotFoundError('tenant');
      // The workflow refuses while VMs hold quota (TenantHasVms), from its state and again in the
      // transaction that records the deletion: no pre-check here could be more current than that.
      try {
        await workflows.close(tenantId, context);
      } catch (error) {
        throw workflowRefusal(error) ?? error;
      }
      tokensRevoked?.();
      const deleted = await findTenant(db, tenantId, { includeDeleted: true });
      return toTenantRecord(deleted!);
    },
  };
}

export type TenantService = ReturnType<typeof createTenantService>;

function pickQuota(row: { display_name: string; max_vms: number; storage_quota_gb: number; api_rate_limit_rpm: number }) {
  return { display_name: row.display_name, max_vms: row.max_vms, storage_quota_gb: row.storage_quota_gb, api_rate_limit_rpm: row.api_rate_limit_rpm };
}
