import { z } from 'zod';
import { issueTokenSchema } from '../../auth/token.schemas';
import { createTenantSchema, pageQuerySchema, updateTenantSchema } from '../../tenants/tenant.schemas';
import { listVmsQuerySchema, spawnVmSchema } from '../../vms/vm.schemas';
import { auditProofQuerySchema, auditQuerySchema } from '../routes/audit.routes';
import { auditEntrySchema, checkpointPublicKeySchema, dependencyUnavailableSchema, inFlightLimitSchema, issuedTokenSchema, page, problemSchema, quotaExceededSchema, tenantAuditEntrySchema, tenantProofSchema, tenantRecordSchema, tokenRecordSchema, vmRecordSchema } from './response-schemas';

export interface RouteDoc {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Express form, e.g. /v1/tenants/:tenant_id */
  path: string;
  summary: string;
  /** The scope a tenant token needs; 'public' needs no token. */
  auth: 'public' | 'service:admin' | 'service:tenant-admin' | 'vm:write' | 'vm:read' | 'audit:read';
  body?: z.ZodType;
  query?: z.ZodType;
  idempotent?: boolean;
  ok: { status: number; schema?: z.ZodType; description: string };
  errors?: Array<{ status: number; description: string; schema?: z.ZodType }>;
}

const noContentQuery = undefined;

/** Every route of the API. The OpenAPI document is built from this list and the routes' own schemas. */
export const ROUTE_DOCS: RouteDoc[] = [
  { method: 'GET', path: '/healthz', summary: 'Liveness', auth: 'public', ok: { status: 200, description: 'The process is alive' } },
  { method: 'GET', path: '/readyz', summary: 'Readiness of Postgres, NATS and Temporal', auth: 'public', ok: { status: 200, description: 'Every dependency answers' }, errors: [{ status: 503, description: 'A dependency is down or did not answer within 2 s; the body names it' }] },
  { method: 'GET', path: '/.well-known/vm-tenant/ledger-checkpoint-key', summary: 'The Ed25519 public key that verifies signed ledger checkpoints', auth: 'public', ok: { status: 200, schema: checkpointPublicKeySchema, description: 'algorithm, key_id (hex SHA-256 of the SPKI DER) and the key as PEM' }, errors: [{ status: 503, description: 'The worker has not generated the key yet' }] },
  { method: 'GET', path: '/openapi.json', summary: 'This document', auth: 'public', ok: { status: 200, description: 'OpenAPI 3.1 document' } },
  { method: 'GET', path: '/docs', summary: 'This document as an API reference page', auth: 'public', ok: { status: 200, description: 'HTML page rendered from /openapi.json; its assets are served by the API under /docs/assets/' } },
  { method: 'POST', path: '/v1/tenants', summary: 'Register a tenant', auth: 'service:admin', body: createTenantSchema, ok: { status: 201, schema: tenantRecordSchema, description: 'The tenant record' }, errors: [{ status: 409, description: 'The tenant id was used before (ids are never reused)' }] },
  { method: 'GET', path: '/v1/tenants', summary: 'List tenants', auth: 'service:admin', query: pageQuerySchema, ok: { status: 200, schema: page(tenantRecordSchema), description: 'A page of tenants' } },
  { method: 'GET', path: '/v1/tenants/:tenant_id', summary: 'Read a tenant', auth: 'service:tenant-admin', ok: { status: 200, schema: tenantRecordSchema, description: 'The tenant record' } },
  { method: 'PATCH', path: '/v1/tenants/:tenant_id', summary: 'Change a tenant\'s quota (applies at once)', auth: 'service:admin', body: updateTenantSchema, ok: { status: 200, schema: tenantRecordSchema, description: 'The updated record; the tenant workflow holds the new quota' }, errors: [{ status: 503, schema: dependencyUnavailableSchema, description: 'The quota is stored but the tenant workflow did not confirm it (it applies with the next VM request at the latest); repeat the PATCH' }] },
  { method: 'DELETE', path: '/v1/tenants/:tenant_id', summary: 'Delete a tenant (its tokens stop working)', auth: 'service:admin', ok: { status: 200, schema: tenantRecordSchema, description: 'The deleted record' }, errors: [{ status: 409, description: 'The tenant still has VMs' }] },
  { method: 'POST', path: '/v1/tenants/:tenant_id/tokens', summary: 'Issue a token for the tenant', auth: 'service:tenant-admin', body: issueTokenSchema, ok: { status: 201, schema: issuedTokenSchema, description: 'The token, with its secret (shown once)' }, errors: [{ status: 403, description: 'Wider or longer-lived than the issuing token' }] },
  { method: 'GET', path: '/v1/tenants/:tenant_id/tokens', summary: 'List the tenant\'s tokens (no secrets)', auth: 'service:tenant-admin', query: pageQuerySchema, ok: { status: 200, schema: page(tokenRecordSchema), description: 'A page of tokens' } },
  { method: 'DELETE', path: '/v1/tenants/:tenant_id/tokens/:token_id', summary: 'Revoke a token and every token issued under it', auth: 'service:tenant-admin', ok: { status: 200, schema: z.object({ token_id: z.string(), revoked_token_ids: z.array(z.string()) }), description: 'The ids revoked now' }, errors: [{ status: 403, description: 'insufficient_scope, or token_outside_subtree: a tenant token revokes only itself and the tokens issued under it' }] },
  { method: 'POST', path: '/v1/vms', summary: 'Spawn a VM', auth: 'vm:write', body: spawnVmSchema, idempotent: true, ok: { status: 202, schema: vmRecordSchema, description: 'Accepted: the VM is provisioning' }, errors: [{ status: 429, schema: z.union([quotaExceededSchema, inFlightLimitSchema, problemSchema]), description: 'quota_exceeded; in_flight_limit (too many VMs of the tenant being spawned or destroyed, see Retry-After); or rate_limited' }, { status: 409, description: 'A request with this Idempotency-Key is in flight' }, { status: 422, description: 'The Idempotency-Key was used for another request' }] },
  { method: 'GET', path: '/v1/vms', summary: 'List the caller\'s tenant\'s VMs', auth: 'vm:read', query: listVmsQuerySchema, ok: { status: 200, schema: page(vmRecordSchema), description: 'A page of VMs' } },
  { method: 'GET', path: '/v1/vms/:vm_id', summary: 'Read a VM', auth: 'vm:read', query: noContentQuery, ok: { status: 200, schema: vmRecordSchema, description: 'The VM' } },
  { method: 'DELETE', path: '/v1/vms/:vm_id', summary: 'Destroy a VM', auth: 'vm:write', idempotent: true, ok: { status: 202, schema: vmRecordSchema, description: 'Accepted: the VM is destroying (a VM still booting stops booting)' }, errors: [{ status: 429, schema: z.union([inFlightLimitSchema, problemSchema]), description: 'in_flight_limit (see Retry-After), or rate_limited' }] },
  { method: 'GET', path: '/v1/audit/proof', summary: 'Inclusion proof of the tenant chain head in the newest signed ledger checkpoint', auth: 'audit:read', query: auditProofQuerySchema, ok: { status: 200, schema: tenantProofSchema, description: 'A signed checkpoint, the tenant chain head it covers and its RFC 6962 audit path' }, errors: [{ status: 503, description: 'No signed checkpoint covers the tenant yet (Retry-After)' }] },
  { method: 'GET', path: '/v1/audit', summary: 'Read the audit ledger', auth: 'audit:read', query: auditQuerySchema, ok: { status: 200, schema: z.union([page(auditEntrySchema), page(tenantAuditEntrySchema)]), description: 'A page of ledger entries: every field for the platform admin, the tenant view (tenantAuditEntrySchema) for a tenant token' } },
];
