import { z } from 'zod';
import { VM_STATUSES } from '../../shared/vm';

/** Shapes of the API's successful answers, for the OpenAPI document (requests use the routes' own schemas; problems are in problem-catalogue.ts). */
export const healthSchema = z.object({ status: z.literal('ok') });

export const readinessSchema = z.object({
  status: z.enum(['ready', 'unavailable']),
  dependencies: z.record(z.string(), z.object({ ok: z.boolean(), error: z.string().optional() })),
  // Informative only: a stale checkpoint never makes the API unready (docs/audit-ledger.md, liveness).
  ledger_checkpoint: z
    .union([
      z.object({
        signed_at: z.string().nullable().describe('When the newest signed ledger checkpoint was signed; null before the first'),
        age_seconds: z.number().describe('Seconds since then (before the first checkpoint: since this API process started)'),
        stale: z.boolean().describe('Older than three signing periods while entries wait for a checkpoint'),
      }),
      z.object({ error: z.string().describe('Why the checkpoint could not be read') }),
    ])
    .optional(),
});

/** /openapi.json itself: only its outline, the OpenAPI 3.1 meta-schema describes the rest. */
export const openApiDocumentSchema = z.looseObject({ openapi: z.string(), info: z.looseObject({}), paths: z.looseObject({}) });

export const revokedTokensSchema = z.object({ token_id: z.string(), revoked_token_ids: z.array(z.string()) });

export const tenantRecordSchema = z.object({
  tenant_id: z.string(),
  display_name: z.string(),
  max_vms: z.number().int(),
  storage_quota_gb: z.number().int(),
  api_rate_limit_rpm: z.number().int(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  deleted_at: z.iso.datetime().nullable(),
});

export const tokenRecordSchema = z.object({
  token_id: z.string(),
  tenant_id: z.string().nullable(),
  scope: z.string(),
  subject_pubkey: z.string().nullable(),
  key_binding: z.enum(['none', 'required']).describe('"required": accepted only on requests signed with the key of subject_pubkey'),
  parent_token_id: z.string().nullable(),
  created_at: z.iso.datetime(),
  expires_at: z.iso.datetime().nullable(),
  revoked_at: z.iso.datetime().nullable(),
});

export const issuedTokenSchema = tokenRecordSchema.extend({ token: z.string().describe('The secret; returned once, never stored') });

export const vmRecordSchema = z.object({
  vm_id: z.uuid(),
  tenant_id: z.string(),
  name: z.string().nullable(),
  vcpus: z.number().int(),
  memory_mb: z.number().int(),
  storage_gb: z.number().int(),
  image: z.string(),
  status: z.enum(VM_STATUSES),
  failure_reason: z.string().nullable(),
  created_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
});

export const auditEntrySchema = z.object({
  seq: z.string(),
  event_id: z.uuid(),
  tenant_id: z.string().nullable(),
  vm_id: z.string().nullable(),
  event_type: z.string(),
  occurred_at: z.iso.datetime(),
  actor: z.object({ token_id: z.string().nullable(), scope: z.string().nullable() }),
  source: z.object({ ip: z.string().nullable(), user_agent: z.string().nullable(), request_id: z.string().nullable() }),
  details: z.record(z.string(), z.unknown()),
  prev_hash: z.string(),
  hash: z.string(),
  tenant_seq: z.string(),
  tenant_prev_hash: z.string(),
  tenant_hash: z.string(),
});

/** An entry as a tenant token sees it: its tenant chain, no global chain, no operator source fields. */
export const tenantAuditEntrySchema = z.object({
  event_id: z.uuid(),
  tenant_id: z.string().nullable(),
  vm_id: z.string().nullable(),
  event_type: z.string(),
  occurred_at: z.iso.datetime(),
  actor: z.object({ token_id: z.string().nullable(), scope: z.string().nullable() }),
  source: z.object({ ip: z.string().nullable().optional(), user_agent: z.string().nullable().optional(), request_id: z.string().nullable() }),
  details: z.record(z.string(), z.unknown()),
  tenant_seq: z.string(),
  tenant_prev_hash: z.string(),
  tenant_hash: z.string(),
});

export const checkpointPublicKeySchema = z.object({ algorithm: z.literal('Ed25519'), key_id: z.string(), public_key_pem: z.string() });

/** 64 lowercase hex digits: a SHA-256 hash, root, key id or checkpoint id. */
const hex64 = () => z.string().regex(/^[0-9a-f]{64}$/);
/** An Ed25519 signature: standard base64 with padding (RFC 4648 section 4) of its 64 bytes. */
const signature64 = () => z.string().regex(/^[A-Za-z0-9+/]{86}==$/);
/** A count or position as a decimal string (a bigint). */
const decimal = () => z.string().regex(/^(0|[1-9][0-9]*)$/);

// A signed checkpoint as a tenant gets it (src/ledger/checkpoint.ts): format 2 (chained, with the entry tree's digest), or 1 from before.
const signedCheckpointV2Schema = z.object({
  v: z.literal(2),
  head_digest: hex64(),
  entries_digest: hex64(),
  tree_size: z.number().int().min(0),
  root: hex64(),
  previous: hex64().nullable(),
  signed_at: z.string(),
  key_id: hex64(),
  signature: signature64(),
});
const signedCheckpointSchema = z.union([
  signedCheckpointV2Schema,
  z.object({
    v: z.literal(1),
    head_digest: hex64(),
    tree_size: z.number().int().min(0),
    root: hex64(),
    signed_at: z.string(),
    key_id: hex64(),
    signature: signature64(),
  }),
]);

/** A key rotation link (src/ledger/checkpoint-rotation.ts): signed by the old key, co-signed by the new one. */
const keyRotationSchema = z.object({
  v: z.literal(2),
  type: z.literal('key_rotation'),
  previous: hex64(),
  key_id: hex64(),
  new_key_id: hex64(),
  signed_at: z.string(),
  signature: signature64(),
  new_key_signature: signature64(),
  public_key_pem: z.string(),
  new_public_key_pem: z.string(),
});

/** A link of the checkpoint series, as GET /v1/audit/checkpoints lists them. */
export const checkpointLinkSchema = z.union([signedCheckpointV2Schema, keyRotationSchema]);

export const tenantProofSchema = z.object({
  checkpoint: signedCheckpointSchema,
  checkpoint_id: hex64(),
  tenant_id: z.string().nullable(),
  tenant_seq: decimal(),
  tenant_hash: hex64(),
  event_id: z.uuid(),
  leaf_index: z.number().int().min(0).describe('0-based position of the leaf, in ascending order of leaf hashes'),
  tree_size: z.number().int().min(0),
  audit_path: z.array(hex64()).describe('RFC 9162 inclusion path, nearest sibling first'),
});

export const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), next_cursor: z.string().nullable() });
