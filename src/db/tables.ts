import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface TenantTable {
  tenant_id: string;
  display_name: string;
  max_vms: number;
  storage_quota_gb: number;
  api_rate_limit_rpm: number;
  quota_version: ColumnType<number, number | undefined, number>;
  /** The start (ms) of the workflow run that last rebuilt the tenant, only raised (docs/admission-protocol.md); bigint, read as a string. */
  admission_epoch: ColumnType<string, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
  deleted_at: Timestamp | null;
  created_by_token_id: string | null;
}

export interface ApiTokenTable {
  token_id: string;
  tenant_id: string | null;
  scope: string;
  subject_pubkey: string | null;
  /** 'required': the token authenticates only requests signed with subject_pubkey's key. */
  key_binding: ColumnType<KeyBinding, KeyBinding | undefined, KeyBinding>;
  token_hash: string;
  parent_token_id: string | null;
  created_at: Timestamp;
  expires_at: Timestamp | null;
  revoked_at: Timestamp | null;
}

export type KeyBinding = 'none' | 'required';

/** Accepted HTTP message signatures, kept until they are too old to be accepted again. */
export interface HttpSignatureSeenTable {
  signature_sha256: string;
  expires_at: Timestamp;
}

/** The trace an entry was appended in (migration 2026_12_06_0012; docs/tracing.md). */
export interface AuditEventTraceTable {
  event_id: string;
  traceparent: string;
  tracestate: string | null;
  recorded_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface AuditEventTable {
  // seq, prev_hash and hash are assigned by the database (trigger audit_events_extend_chain).
  seq: ColumnType<string, number | string | undefined, never>;
  event_id: string;
  tenant_id: string | null;
  vm_id: string | null;
  event_type: string;
  occurred_at: Timestamp;
  actor_token_id: string | null;
  actor_scope: string | null;
  source_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: ColumnType<Record<string, unknown>, string, never>;
  prev_hash: ColumnType<string, string | undefined, never>;
  hash: ColumnType<string, string | undefined, never>;
  // The entry's place in its tenant's chain (no tenant: the platform chain); assigned by the trigger too.
  tenant_seq: ColumnType<string, number | string | undefined, never>;
  tenant_prev_hash: ColumnType<string, string | undefined, never>;
  tenant_hash: ColumnType<string, string | undefined, never>;
}

export interface VmTable {
  vm_id: string;
  tenant_id: string;
  name: string | null;
  vcpus: number;
  memory_mb: number;
  storage_gb: number;
  image: string;
  status: string;
  failure_reason: string | null;
  /** Which request for this VM id the row holds (1, then +1 per refused request asked again). */
  admission_attempt: ColumnType<number, number | undefined, number>;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface IdempotencyKeyTable {
  tenant_id: string;
  idempotency_key: string;
  request_fingerprint: string;
  state: 'in_flight' | 'done';
  response_status: number | null;
  response_body: ColumnType<unknown, string | null, string | null>;
  created_at: Timestamp;
  expires_at: Timestamp;
}

export interface EventRelayCursorTable {
  name: string;
  last_seq: ColumnType<string, number | string, number | string>;
  updated_at: Timestamp;
}

export interface Database {
  tenants: TenantTable;
  api_tokens: ApiTokenTable;
  audit_events: AuditEventTable;
  vms: VmTable;
  idempotency_keys: IdempotencyKeyTable;
  event_relay_cursor: EventRelayCursorTable;
  http_signatures_seen: HttpSignatureSeenTable;
  audit_event_traces: AuditEventTraceTable;
}

export type TenantRow = Selectable<TenantTable>;
export type ApiTokenRow = Selectable<ApiTokenTable>;
export type NewApiToken = Insertable<ApiTokenTable>;
export type AuditEventRow = Selectable<AuditEventTable>;
export type VmRow = Selectable<VmTable>;
export type IdempotencyKeyRow = Selectable<IdempotencyKeyTable>;
export type { Generated };
