import { z } from 'zod';
import { issueTokenSchema } from '../../auth/token.schemas';
import { createTenantSchema, pageQuerySchema, updateTenantSchema } from '../../tenants/tenant.schemas';
import { listVmsQuerySchema, spawnVmSchema } from '../../vms/vm.schemas';
import { auditCheckpointsQuerySchema, auditProofQuerySchema, auditQuerySchema } from '../routes/audit.routes';
import type { ProblemCode } from '../problem';
import {
  auditEntrySchema,
  checkpointLinkSchema,
  checkpointPublicKeySchema,
  healthSchema,
  issuedTokenSchema,
  openApiDocumentSchema,
  page,
  readinessSchema,
  revokedTokensSchema,
  tenantAuditEntrySchema,
  tenantProofSchema,
  tenantRecordSchema,
  tokenRecordSchema,
  vmRecordSchema,
} from './response-schemas';

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
  ok: { status: number; schema?: z.ZodType; description: string; contentType?: string };
  /**
   * The problems this route answers beyond those every route of its kind can answer (see
   * problemsOf in openapi-document.ts); a route that answers a code not listed here is a bug in
   * this table, which the response check of the test suite and Schemathesis find.
   */
  problems?: ProblemCode[];
  /** Another answer than the success and the problems (/readyz: 503 with the dependency report). */
  other?: { status: number; schema: z.ZodType; description: string };
}

/** Every route of the API. The OpenAPI document is built from this list and the routes' own schemas. */
export const ROUTE_DOCS: RouteDoc[] = [
  { method: 'GET', path: '/healthz', summary: 'Liveness', auth: 'public', ok: { status: 200, schema: healthSchema, description: 'The process is alive' } },
  {
    method: 'GET',
    path: '/readyz',
    summary:
      'Readiness: unready only while Postgres, which every request needs, is down; Postgres, NATS and Temporal each reported, and the age of the newest signed ledger checkpoint (neither Temporal, NATS nor the checkpoint makes it fail)',
    auth: 'public',
    ok: {
      status: 200,
      schema: readinessSchema,
      description: 'Postgres answers; `dependencies` names any other dependency that is down or hung (its routes answer 503 naming it)',
    },
    other: { status: 503, schema: readinessSchema, description: 'Postgres is down or did not answer within 2 s; the body names every dependency that is down' },
  },
  {
    method: 'GET',
    path: '/.well-known/vm-tenant/ledger-checkpoint-key',
    summary: 'The Ed25519 public key that verifies signed ledger checkpoints',
    auth: 'public',
    ok: { status: 200, schema: checkpointPublicKeySchema, description: 'algorithm, key_id (hex SHA-256 of the SPKI DER) and the key as PEM' },
    problems: ['dependency_unavailable'],
  },
  {
    method: 'GET',
    path: '/openapi.json',
    summary: 'This document',
    auth: 'public',
    ok: { status: 200, schema: openApiDocumentSchema, description: 'OpenAPI 3.1 document' },
  },
  {
    method: 'GET',
    path: '/docs',
    summary: 'This document as an API reference page',
    auth: 'public',
    ok: { status: 200, contentType: 'text/html', description: 'HTML page rendered from /openapi.json; its assets are served by the API under /docs/assets/' },
  },
  {
    method: 'POST',
    path: '/v1/tenants',
    summary: 'Register a tenant',
    auth: 'service:admin',
    body: createTenantSchema,
    ok: { status: 201, schema: tenantRecordSchema, description: 'The tenant record' },
    problems: ['tenant_exists'],
  },
  {
    method: 'GET',
    path: '/v1/tenants',
    summary: 'List tenants',
    auth: 'service:admin',
    query: pageQuerySchema,
    ok: { status: 200, schema: page(tenantRecordSchema), description: 'A page of tenants' },
  },
  {
    method: 'GET',
    path: '/v1/tenants/:tenant_id',
    summary: 'Read a tenant',
    auth: 'service:tenant-admin',
    ok: { status: 200, schema: tenantRecordSchema, description: 'The tenant record' },
    problems: ['tenant_not_found'],
  },
  {
    method: 'PATCH',
    path: '/v1/tenants/:tenant_id',
    summary: "Change a tenant's quota (applies at once)",
    auth: 'service:admin',
    body: updateTenantSchema,
    ok: { status: 200, schema: tenantRecordSchema, description: 'The updated record; the tenant workflow holds the new quota' },
    // dependency_unavailable with quota_version: stored, not confirmed by the workflow; repeat the PATCH.
    problems: ['tenant_not_found'],
  },
  {
    method: 'DELETE',
    path: '/v1/tenants/:tenant_id',
    summary: 'Delete a tenant (its tokens stop working)',
    auth: 'service:admin',
    ok: { status: 200, schema: tenantRecordSchema, description: 'The deleted record' },
    problems: ['tenant_not_found', 'tenant_has_vms'],
  },
  {
    method: 'POST',
    path: '/v1/tenants/:tenant_id/tokens',
    summary: 'Issue a token for the tenant',
    auth: 'service:tenant-admin',
    body: issueTokenSchema,
    ok: { status: 201, schema: issuedTokenSchema, description: 'The token, with its secret (shown once)' },
    problems: ['tenant_not_found', 'token_exceeds_issuer'],
  },
  {
    method: 'GET',
    path: '/v1/tenants/:tenant_id/tokens',
    summary: "List the tenant's tokens (no secrets)",
    auth: 'service:tenant-admin',
    query: pageQuerySchema,
    ok: { status: 200, schema: page(tokenRecordSchema), description: 'A page of tokens' },
    problems: ['tenant_not_found'],
  },
  {
    method: 'DELETE',
    path: '/v1/tenants/:tenant_id/tokens/:token_id',
    summary: 'Revoke a token and every token issued under it',
    auth: 'service:tenant-admin',
    ok: { status: 200, schema: revokedTokensSchema, description: 'The ids revoked now' },
    problems: ['tenant_not_found', 'token_not_found', 'token_outside_subtree'],
  },
  {
    method: 'POST',
    path: '/v1/vms',
    summary: 'Spawn a VM',
    auth: 'vm:write',
    body: spawnVmSchema,
    idempotent: true,
    ok: { status: 202, schema: vmRecordSchema, description: 'Accepted: the VM is provisioning' },
    problems: ['tenant_not_found', 'idempotency_key_in_flight', 'idempotency_key_reused', 'quota_exceeded', 'in_flight_limit'],
  },
  {
    method: 'GET',
    path: '/v1/vms',
    summary: "List the caller's tenant's VMs",
    auth: 'vm:read',
    query: listVmsQuerySchema,
    ok: { status: 200, schema: page(vmRecordSchema), description: 'A page of VMs' },
  },
  {
    method: 'GET',
    path: '/v1/vms/:vm_id',
    summary: 'Read a VM',
    auth: 'vm:read',
    ok: { status: 200, schema: vmRecordSchema, description: 'The VM' },
    problems: ['vm_not_found'],
  },
  {
    method: 'DELETE',
    path: '/v1/vms/:vm_id',
    summary: 'Destroy a VM',
    auth: 'vm:write',
    idempotent: true,
    ok: {
      status: 202,
      schema: vmRecordSchema,
      description: 'Accepted: the VM is destroying (a VM still booting stops booting); it stays readable, as destroying and then destroyed',
    },
    problems: ['vm_not_found', 'tenant_not_found', 'idempotency_key_in_flight', 'idempotency_key_reused', 'in_flight_limit'],
  },
  {
    method: 'GET',
    path: '/v1/audit/proof',
    summary: 'Inclusion proof of the tenant chain head in the newest signed ledger checkpoint, or in the one named by `checkpoint`',
    auth: 'audit:read',
    query: auditProofQuerySchema,
    ok: { status: 200, schema: tenantProofSchema, description: 'A signed checkpoint, the tenant chain head it covers and its RFC 6962 audit path' },
    // not_anchored_yet (409, Retry-After) until a signed checkpoint covers the tenant; dependency_unavailable
    // (503) when the checkpoint stream cannot be read or the stored heads no longer give the signed root.
    problems: ['tenant_not_found', 'not_anchored_yet', 'checkpoint_not_found'],
  },
  {
    method: 'GET',
    path: '/v1/audit/checkpoints',
    summary: 'The signed checkpoint series, link by link, from its genesis or after a checkpoint the caller holds',
    auth: 'audit:read',
    query: auditCheckpointsQuerySchema,
    ok: {
      status: 200,
      schema: page(checkpointLinkSchema),
      description:
        "Signed checkpoints and key rotations, oldest first; each names the link hash of the one before it (`previous`); next_cursor is the last one's id",
    },
    problems: ['checkpoint_not_found'],
  },
  {
    method: 'GET',
    path: '/v1/audit',
    summary: 'Read the audit ledger',
    auth: 'audit:read',
    query: auditQuerySchema,
    ok: {
      status: 200,
      schema: z.union([page(auditEntrySchema), page(tenantAuditEntrySchema)]),
      description: 'A page of ledger entries: every field for the platform admin, the tenant view (tenantAuditEntrySchema) for a tenant token',
    },
    problems: ['tenant_not_found'],
  },
];
