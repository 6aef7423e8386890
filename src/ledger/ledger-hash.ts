import { createHash } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);

/** The fields an entry's hash covers, in the form they are stored and read back. */
export interface HashedFields {
  seq: string;
  event_id: string;
  tenant_id: string | null;
  vm_id: string | null;
  event_type: string;
  occurred_at: Date;
  actor_token_id: string | null;
  actor_scope: string | null;
  source_ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

/**
 * RFC 8785 (JCS) canonical JSON. Inlined rather than taken from the `canonicalize` package: its
 * v4 is ESM-only with an `import`-only export map, so it cannot be required from this CommonJS
 * code base (tsc output, tsx/cjs, ts-jest). Same algorithm: ES number serialisation, JSON string
 * escaping, object keys sorted by UTF-16 code units, undefined members skipped.
 */
// In a /u pattern a valid surrogate pair is one code point, so this matches only unpaired halves.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

export function canonicalJson(value: unknown): string {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`${value} is not allowed in canonical JSON`);
  if (typeof value === 'string' && LONE_SURROGATE.test(value)) throw new Error('lone surrogate is not allowed in canonical JSON');
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  const withJson = value as { toJSON?: () => unknown };
  if (typeof withJson.toJSON === 'function') return canonicalJson(withJson.toJSON());
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown) => (item === undefined || typeof item === 'symbol' || typeof item === 'function' ? 'null' : canonicalJson(item))).join(',')}]`;
  }
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .sort()
    .filter((key) => record[key] !== undefined && typeof record[key] !== 'symbol' && typeof record[key] !== 'function')
    .map((key) => `${canonicalJson(key)}:${canonicalJson(record[key])}`);
  return `{${members.join(',')}}`;
}

/** SHA-256 over the previous hash and the RFC 8785 canonical JSON of the entry. */
export function entryHash(prevHash: string, fields: HashedFields): string {
  // Pick the covered fields explicitly: callers pass whole rows, whose prev_hash/hash must not be hashed.
  const covered: Record<string, unknown> = {
    seq: fields.seq,
    event_id: fields.event_id,
    tenant_id: fields.tenant_id,
    vm_id: fields.vm_id,
    event_type: fields.event_type,
    occurred_at: fields.occurred_at.toISOString(),
    actor_token_id: fields.actor_token_id,
    actor_scope: fields.actor_scope,
    source_ip: fields.source_ip,
    user_agent: fields.user_agent,
    request_id: fields.request_id,
    details: fields.details,
  };
  return createHash('sha256').update(prevHash).update('\n').update(canonicalJson(covered)).digest('hex');
}

/** The scope of the platform operator's token: its actions' source fields are not shown to tenants. */
export const PLATFORM_ADMIN_SCOPE = 'service:admin';

/** What an entry's tenant hash covers: its place in the tenant chain, not the global seq. */
export type TenantHashedFields = Omit<HashedFields, 'seq'> & { tenant_seq: string };

/**
 * SHA-256 over the previous tenant hash and the RFC 8785 canonical JSON of the entry as its tenant
 * sees it: `tenant_seq` instead of the global `seq`, and no source address or user agent when the
 * platform operator acted (the tenant is not shown them; the global hash covers them).
 */
export function tenantEntryHash(prevTenantHash: string, fields: TenantHashedFields): string {
  const operator = fields.actor_scope === PLATFORM_ADMIN_SCOPE;
  const covered: Record<string, unknown> = {
    tenant_seq: fields.tenant_seq,
    event_id: fields.event_id,
    tenant_id: fields.tenant_id,
    vm_id: fields.vm_id,
    event_type: fields.event_type,
    occurred_at: fields.occurred_at.toISOString(),
    actor_token_id: fields.actor_token_id,
    actor_scope: fields.actor_scope,
    source_ip: operator ? null : fields.source_ip,
    user_agent: operator ? null : fields.user_agent,
    request_id: fields.request_id,
    details: fields.details,
  };
  return createHash('sha256').update(prevTenantHash).update('\n').update(canonicalJson(covered)).digest('hex');
}
