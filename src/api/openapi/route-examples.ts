import type { RouteDoc } from './route-docs';

/** The reference page's groups: every operation is under one tag (tagOf), each with what it is for. */
export const TAGS = [
  { name: 'tenants', description: 'Register tenants, read them and change their quota (platform admin; a tenant admin reads its own).' },
  {
    name: 'tokens',
    description:
      "Capability tokens: issue one for a tenant's holder (optionally bound to its Ed25519 key), list them, revoke a token and every token under it.",
  },
  {
    name: 'VMs',
    description: "Spawn, list, read and destroy the caller's tenant's VMs, under its quota; spawn and destroy are idempotent with an Idempotency-Key.",
  },
  { name: 'audit', description: "The append-only audit ledger: a tenant's entries, the signed checkpoint series, inclusion proofs and the checkpoint key." },
  { name: 'service', description: 'Liveness, readiness and this reference (the document and its page); no token needed.' },
] as const;
export type TagName = (typeof TAGS)[number]['name'];

/** The tag an operation is listed under, from its path. */
export function tagOf(doc: Pick<RouteDoc, 'path'>): TagName {
  if (doc.path.startsWith('/v1/tenants/:tenant_id/tokens')) return 'tokens';
  if (doc.path.startsWith('/v1/tenants')) return 'tenants';
  if (doc.path.startsWith('/v1/vms')) return 'VMs';
  if (doc.path.startsWith('/v1/audit') || doc.path.startsWith('/.well-known/vm-tenant/')) return 'audit';
  return 'service';
}

/** One example per operation: the request body it takes (if any) and its success answer. */
export interface RouteExample {
  request?: unknown;
  response: unknown;
}

const AT = '2026-05-04T09:30:00.000Z';
const LATER = '2026-05-04T09:31:12.000Z';
const VM_ID = '3f2b8c1e-5a7d-4e9b-8c21-0d6f4a9e7b13';
const EVENT_ID = '9c4e2a71-3b58-4f0d-a6e2-51c7d8b9f042';
const hex = (digit: string) => digit.repeat(64);
const SIGNATURE = `${'A'.repeat(86)}==`;
const PUBLIC_KEY_PEM = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n';

const tenant = {
  tenant_id: 'acme-corp',
  display_name: 'Acme Corp',
  max_vms: 20,
  storage_quota_gb: 500,
  api_rate_limit_rpm: 600,
  created_at: AT,
  updated_at: AT,
  deleted_at: null,
};
const token = {
  token_id: 'tok_8Fq2mZr1',
  tenant_id: 'acme-corp',
  scope: 'vm:write',
  subject_pubkey: 'Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=',
  key_binding: 'none',
  parent_token_id: 'tok_1aAdmin',
  created_at: AT,
  expires_at: '2026-05-05T09:30:00.000Z',
  revoked_at: null,
};
const vm = {
  vm_id: VM_ID,
  tenant_id: 'acme-corp',
  name: 'build-runner-1',
  vcpus: 2,
  memory_mb: 4096,
  storage_gb: 40,
  image: 'debian-12',
  status: 'provisioning',
  failure_reason: null,
  created_at: AT,
  updated_at: AT,
};
const checkpoint = {
  v: 2,
  head_digest: hex('1'),
  entries_digest: hex('2'),
  tree_size: 4,
  root: hex('3'),
  previous: hex('4'),
  signed_at: AT,
  key_id: hex('5'),
  signature: SIGNATURE,
};
const tenantEntry = {
  event_id: EVENT_ID,
  tenant_id: 'acme-corp',
  vm_id: VM_ID,
  event_type: 'vm.spawn_requested',
  occurred_at: AT,
  actor: { token_id: 'tok_8Fq2mZr1', scope: 'vm:write' },
  source: { request_id: 'req_01HXM3' },
  details: { vcpus: 2, memory_mb: 4096, storage_gb: 40, image: 'debian-12' },
  tenant_seq: '7',
  tenant_prev_hash: hex('6'),
  tenant_hash: hex('7'),
};

/** Keyed by `METHOD path` as in ROUTE_DOCS; a test checks there is one per operation and that each is valid against its schemas. */
export const ROUTE_EXAMPLES: Record<string, RouteExample> = {
  'GET /healthz': { response: { status: 'ok' } },
  'GET /readyz': {
    response: {
      status: 'ready',
      dependencies: { postgres: { ok: true }, temporal: { ok: true }, nats: { ok: true } },
      ledger_checkpoint: { signed_at: AT, age_seconds: 42, stale: false },
    },
  },
  'GET /.well-known/vm-tenant/ledger-checkpoint-key': { response: { algorithm: 'Ed25519', key_id: hex('5'), public_key_pem: PUBLIC_KEY_PEM } },
  'GET /openapi.json': { response: { openapi: '3.1.0', info: { title: 'vm-tenant', version: '1.0.0' }, paths: {} } },
  'GET /docs': { response: '<!doctype html><html><head><title>vm-tenant API reference</title></head><body><div id="reference"></div></body></html>' },
  'POST /v1/tenants': {
    request: { tenant_id: 'acme-corp', display_name: 'Acme Corp', max_vms: 20, storage_quota_gb: 500, api_rate_limit_rpm: 600 },
    response: tenant,
  },
  'GET /v1/tenants': { response: { items: [tenant], next_cursor: null } },
  'GET /v1/tenants/:tenant_id': { response: tenant },
  'PATCH /v1/tenants/:tenant_id': { request: { max_vms: 40 }, response: { ...tenant, max_vms: 40, updated_at: LATER } },
  'DELETE /v1/tenants/:tenant_id': { response: { ...tenant, updated_at: LATER, deleted_at: LATER } },
  'POST /v1/tenants/:tenant_id/tokens': {
    request: { subject_pubkey: 'Gb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=', scope: 'vm:write', expires_in_seconds: 86400 },
    response: { ...token, token: 'vmt_8Fq2mZr1_s3cr3tS3cr3tS3cr3tS3cr3t' },
  },
  'GET /v1/tenants/:tenant_id/tokens': { response: { items: [token], next_cursor: null } },
  'DELETE /v1/tenants/:tenant_id/tokens/:token_id': { response: { token_id: 'tok_8Fq2mZr1', revoked_token_ids: ['tok_8Fq2mZr1', 'tok_Child42'] } },
  'POST /v1/vms': { request: { vcpus: 2, memory_mb: 4096, storage_gb: 40, image: 'debian-12', name: 'build-runner-1' }, response: vm },
  'GET /v1/vms': { response: { items: [{ ...vm, status: 'running', updated_at: LATER }], next_cursor: null } },
  'GET /v1/vms/:vm_id': { response: { ...vm, status: 'running', updated_at: LATER } },
  'DELETE /v1/vms/:vm_id': { response: { ...vm, status: 'destroying', updated_at: LATER } },
  'GET /v1/audit/proof': {
    response: {
      checkpoint,
      checkpoint_id: hex('8'),
      tenant_id: 'acme-corp',
      tenant_seq: '7',
      tenant_hash: hex('7'),
      event_id: EVENT_ID,
      leaf_index: 1,
      tree_size: 4,
      audit_path: [hex('9'), hex('a')],
    },
  },
  'GET /v1/audit/checkpoints': { response: { items: [checkpoint], next_cursor: hex('8') } },
  'GET /v1/audit': { response: { items: [tenantEntry], next_cursor: '7' } },
};

export function exampleOf(doc: Pick<RouteDoc, 'method' | 'path'>): RouteExample | undefined {
  return ROUTE_EXAMPLES[`${doc.method} ${doc.path}`];
}
