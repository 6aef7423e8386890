import type { KeyObject } from 'node:crypto';
import type { TenantAuditEntry } from './audit-entry';
import { keyIdOf, verifySignedCheckpoint } from './checkpoint';
import { verifyCheckpointPath, walkSeries } from './checkpoint-path';
import { tenantLinkHash, type TenantLink } from './tenant-link';
import type { TenantProof } from './tenant-proof';
import { verifyTenantLedger, type TenantVerdict } from './tenant-verifier';
import { openWitnessLog } from './witness-log';

/** What a tenant holds: the key it pinned, its entries, the proofs it was given now, and what it kept from before. */
export interface TenantMaterial {
  pinned: KeyObject;
  entries: readonly TenantAuditEntry[];
  proofs: readonly TenantProof[];
  /** The proof saved last time. */
  prior?: TenantProof;
  /** Links of the series after the prior proof's checkpoint (GET /v1/audit/checkpoints?cursor=<its checkpoint_id>). */
  links?: readonly unknown[];
  /** A witness's log of the series. */
  witness?: readonly unknown[];
}

/**
 * A tenant's whole check, offline: its chain and proofs (tenant-verifier.ts), then, with a prior
 * proof, that the service did not go back or show it another history (checkpoint-path.ts), and,
 * with a witness's log, that the witness saw the same checkpoints. Used by `service-fs
 * verify-tenant` (files) and `vm-tenant audit verify` (fetched).
 */
export function verifyTenantHistory(m: TenantMaterial): TenantVerdict {
  const series = checkSeries(m.pinned, m.proofs, m.prior, m.links);
  const witness = m.witness === undefined ? [] : checkWitness(m.pinned, [...(m.prior ? [m.prior] : []), ...m.proofs], m.witness);
  const verdict = verifyTenantLedger(m.entries, m.proofs, series.keys, { prior: m.prior });
  const lines = [...verdict.lines, ...series.lines, ...witness];
  return { ok: lines.every((line) => !line.startsWith('bad:')), lines };
}

/** The keys proofs may be signed with (the pinned one, and those a chain of links rotated to), and what the links say about each proof. */
function checkSeries(
  pinned: KeyObject,
  proofs: readonly TenantProof[],
  prior: TenantProof | undefined,
  links: readonly unknown[] | undefined,
): { keys: KeyObject[]; lines: string[] } {
  const keys = [pinned];
  const lines: string[] = [];
  const addKeys = (more: readonly KeyObject[]) => more.forEach((key) => keys.some((k) => keyIdOf(k) === keyIdOf(key)) || keys.push(key));
  if (prior === undefined) {
    // No prior proof: keys the links rotate to, from the first link the pinned key signed.
    if (links !== undefined) {
      const start = links.find((value) => verifySignedCheckpoint(value, pinned));
      if (start !== undefined) addKeys(walkSeries(tenantLinkHash(start as TenantLink), pinned, links).keys);
    }
    return { keys, lines };
  }
  for (const proof of proofs) {
    if (links === undefined) {
      if (String(proof.checkpoint.signed_at) < String(prior.checkpoint.signed_at)) {
        lines.push(
          `bad: rollback: the checkpoint shown now (signed at ${proof.checkpoint.signed_at}) is older than the one of the prior proof (signed at ${prior.checkpoint.signed_at})`,
        );
      }
      continue;
    }
    const path = verifyCheckpointPath(prior.checkpoint, proof.checkpoint, links, pinned);
    if (path.ok) {
      addKeys(path.keys);
      lines.push(
        `ok: the checkpoint signed at ${proof.checkpoint.signed_at} extends the prior proof's (signed at ${prior.checkpoint.signed_at}) by ${path.links} signed link${path.links === 1 ? '' : 's'}`,
      );
    } else lines.push(`bad: ${path.defect}: ${path.message}`);
  }
  if (links === undefined && proofs.length > 0)
    lines.push('warning: no --checkpoints given: the newer checkpoints are compared with the prior one by time only, not shown to extend it');
  return { keys, lines };
}

/** Each proof's checkpoint in the witness's log, unless it is newer than everything the witness saw. */
function checkWitness(pinned: KeyObject, proofs: readonly TenantProof[], values: readonly unknown[]): string[] {
  const opened = openWitnessLog(values, pinned);
  if ('fork' in opened) return [`bad: fork: the witness's log does not hold together: ${opened.fork}`];
  const { log } = opened;
  if (log.tip === null) return ["warning: the witness's log is empty"];
  const lines: string[] = [];
  for (const proof of proofs) {
    const id = tenantLinkHash(proof.checkpoint);
    if (log.hashes.has(id)) lines.push(`ok: the witness saw the checkpoint signed at ${proof.checkpoint.signed_at}`);
    else if (String(proof.checkpoint.signed_at) <= log.tip.signed_at)
      lines.push(
        `bad: fork: the checkpoint signed at ${proof.checkpoint.signed_at} is not in the witness's log, which goes on to ${log.tip.signed_at}: the service showed you a checkpoint it did not show the witness (a split view)`,
      );
    else
      lines.push(
        `warning: the checkpoint signed at ${proof.checkpoint.signed_at} is newer than the witness's log (up to ${log.tip.signed_at}): check again once the witness has it`,
      );
  }
  return lines;
}
