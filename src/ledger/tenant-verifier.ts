import type { KeyObject } from 'node:crypto';
import type { TenantAuditEntry } from './audit-entry';
import { verifySignedCheckpoint } from './checkpoint';
import { GENESIS_HASH, tenantEntryHash } from './ledger-hash';
import { verifyInclusion } from './merkle';
import type { TenantProof } from './tenant-proof';
import { tenantLinkHash } from './tenant-link';
import { tenantLeafHash } from './tenant-tree';

/**
 * A tenant's own check of its ledger entries, offline: with the public key, the entries the API
 * gave it (GET /v1/audit, every page) and the proofs it kept (GET /v1/audit/proof, over time). No
 * database, no other tenant's data. Findings, each naming its defect:
 * - `gap`, `rewrite`: the tenant chain itself does not link or recompute;
 * - `forged_checkpoint`: a proof's checkpoint is not signed by the key;
 * - `bad_proof`: a proof's head is not in the signed tree;
 * - `truncation`: the entries end before a proved head, or the proved head moved down;
 * - `rewrite`: the proved head's entry is gone, or its seq now holds another hash;
 * - `forged_insert`: the proved head's entry moved up: entries were inserted before it;
 * - `fork`: proofs that describe two histories of the chain;
 * - `rollback`: against the prior proof (the one saved last time), the entries end before its head,
 *   or a proof covers less than it.
 */
export interface TenantVerdict {
  ok: boolean;
  lines: string[];
}

const describe = (p: TenantProof): string => `the proof of the checkpoint signed at ${p.checkpoint.signed_at} (tenant_seq ${p.tenant_seq})`;

export interface TenantVerifyOptions {
  /**
   * The proof the tenant saved last time: what the service showed before. Entries that end before
   * its head, or a proof of less, are a `rollback`: the service went back in its history or
   * withholds the newest entries.
   */
  prior?: TenantProof;
}

/** `keys`: the pinned key, and any key a checked chain of links rotated to (checkpoint-path.ts). */
export function verifyTenantLedger(
  entries: readonly TenantAuditEntry[],
  givenProofs: readonly TenantProof[],
  keys: KeyObject | readonly KeyObject[],
  options: TenantVerifyOptions = {},
): TenantVerdict {
  const { prior } = options;
  const proofs = prior ? [prior, ...givenProofs] : givenProofs;
  const signedBy = (checkpoint: unknown) => (Array.isArray(keys) ? keys : [keys as KeyObject]).some((key) => verifySignedCheckpoint(checkpoint, key));
  const lines: string[] = [];
  const bad = (defect: string, message: string) => lines.push(`bad: ${defect}: ${message}`);
  const chain = [...entries].sort((a, b) => Number(BigInt(a.tenant_seq) - BigInt(b.tenant_seq)));
  const tenantIds = new Set(chain.map((e) => e.tenant_id));
  if (tenantIds.size > 1) bad('rewrite', `the entries belong to ${tenantIds.size} tenants`);
  const tenantId = chain[0]?.tenant_id ?? proofs[0]?.tenant_id ?? null;

  // 1. The tenant chain: tenant_seq 1, 2, 3, …, each linked to the previous and recomputing.
  let prev = GENESIS_HASH;
  let chainOk = true;
  chain.forEach((entry, i) => {
    if (!chainOk) return;
    const fail = (defect: string, message: string) => {
      bad(defect, `entry tenant_seq ${entry.tenant_seq}: ${message}`);
      chainOk = false;
    };
    if (BigInt(entry.tenant_seq) !== BigInt(i + 1)) return fail('gap', `expected tenant_seq ${i + 1}`);
    if (entry.tenant_prev_hash !== prev) return fail('rewrite', 'tenant_prev_hash does not match the previous entry');
    const recomputed = tenantEntryHash(prev, {
      tenant_seq: entry.tenant_seq,
      event_id: entry.event_id,
      tenant_id: entry.tenant_id,
      vm_id: entry.vm_id,
      event_type: entry.event_type,
      occurred_at: new Date(entry.occurred_at),
      actor_token_id: entry.actor.token_id,
      actor_scope: entry.actor.scope,
      source_ip: entry.source.ip ?? null,
      user_agent: entry.source.user_agent ?? null,
      request_id: entry.source.request_id,
      details: entry.details,
    });
    if (recomputed !== entry.tenant_hash) return fail('rewrite', 'tenant_hash does not match the entry content');
    prev = entry.tenant_hash;
  });
  if (chainOk) lines.push(`ok: ${chain.length} entries of ${tenantId === null ? 'the platform chain' : `tenant ${tenantId}`} link and recompute`);

  // 2. Each proof: signed, in the signed tree, and still describing these entries.
  const valid: TenantProof[] = [];
  for (const proof of proofs) {
    if (!signedBy(proof.checkpoint)) {
      bad('forged_checkpoint', `${describe(proof)} is not signed by this key`);
      continue;
    }
    const leaf = tenantLeafHash({ tenant_id: proof.tenant_id, tenant_seq: proof.tenant_seq, tenant_hash: proof.tenant_hash });
    if (
      proof.tree_size !== proof.checkpoint.tree_size ||
      proof.tenant_id !== tenantId ||
      !verifyInclusion(leaf, proof.leaf_index, proof.tree_size, proof.audit_path, proof.checkpoint.root)
    ) {
      bad('bad_proof', `${describe(proof)}: this tenant's head is not in the signed tree`);
      continue;
    }
    // The id a tenant keeps and pages the series by must be the checkpoint's own link hash (proofs
    // saved before ids existed have none).
    if (proof.checkpoint_id !== undefined && proof.checkpoint_id !== tenantLinkHash(proof.checkpoint)) {
      bad('bad_proof', `${describe(proof)}: its checkpoint_id is not the checkpoint's link hash`);
      continue;
    }
    valid.push(proof);
  }
  const outcomes = valid.map((proof) => compare(proof, chain));
  outcomes.forEach((outcome, i) => {
    if (outcome === null) return;
    const proof = valid[i]!;
    const later = valid.find(
      (p, j) => outcomes[j] === null && p.checkpoint.signed_at > proof.checkpoint.signed_at && BigInt(p.tenant_seq) >= BigInt(proof.tenant_seq),
    );
    if (later) bad('fork', `the entries match ${describe(later)} but not ${describe(proof)}: ${outcome.message}; the changed history was signed`);
    else if (proof === prior && outcome.defect === 'truncation')
      bad('rollback', `${outcome.message}: the prior proof covered them, so the service went back in its history or withholds its newest entries`);
    else bad(outcome.defect, outcome.message);
  });
  if (prior && valid.includes(prior)) {
    for (const proof of valid) {
      if (proof !== prior && BigInt(proof.tenant_seq) < BigInt(prior.tenant_seq)) {
        bad('rollback', `${describe(proof)} covers less than the prior proof, ${describe(prior)}: the service shows an older state of the chain`);
      }
    }
  }
  for (const [i, proof] of valid.entries()) {
    const same = valid.find((p, j) => j < i && p.tenant_seq === proof.tenant_seq && p.tenant_hash !== proof.tenant_hash);
    if (same) bad('fork', `${describe(same)} and ${describe(proof)} give tenant_seq ${proof.tenant_seq} different hashes`);
  }
  const matching = valid.filter((_, i) => outcomes[i] === null);
  if (matching.length > 0 && lines.every((line) => line.startsWith('ok:'))) {
    const newest = matching.reduce((a, b) => (b.checkpoint.signed_at > a.checkpoint.signed_at ? b : a));
    lines.push(
      `ok: ${matching.length} signed checkpoint${matching.length === 1 ? '' : 's'} cover these entries; the newest (signed ${newest.checkpoint.signed_at}) up to tenant_seq ${newest.tenant_seq}`,
    );
  } else if (proofs.length === 0) {
    lines.push('warning: no proof given: the entries are only checked against each other');
  }
  return { ok: lines.every((line) => !line.startsWith('bad:')), lines };
}

function compare(proof: TenantProof, chain: readonly TenantAuditEntry[]): { defect: string; message: string } | null {
  const signed = BigInt(proof.tenant_seq);
  const last = chain.length === 0 ? 0n : BigInt(chain[chain.length - 1]!.tenant_seq);
  if (last < signed)
    return {
      defect: 'truncation',
      message: `the entries end at tenant_seq ${last}, but ${describe(proof)} covers tenant_seq ${proof.tenant_seq}: entries were cut off`,
    };
  const now = chain.find((e) => e.event_id === proof.event_id);
  if (!now) return { defect: 'rewrite', message: `the entry proved by ${describe(proof)} (event ${proof.event_id}) is gone` };
  const at = BigInt(now.tenant_seq);
  if (at > signed)
    return {
      defect: 'forged_insert',
      message: `the entry proved by ${describe(proof)} is now at tenant_seq ${now.tenant_seq}: ${at - signed} entries were inserted before it`,
    };
  if (at < signed)
    return {
      defect: 'truncation',
      message: `the entry proved by ${describe(proof)} is now at tenant_seq ${now.tenant_seq}: ${signed - at} entries before it were deleted`,
    };
  if (now.tenant_hash !== proof.tenant_hash)
    return {
      defect: 'rewrite',
      message: `tenant_seq ${proof.tenant_seq} no longer has the hash proved by ${describe(proof)}: it, or an entry before it, was changed`,
    };
  return null;
}
