import type { Kysely } from 'kysely';
import { connect } from 'nats';
import type { Database } from '../db/tables';
import { toTenantAuditEntry, type TenantAuditEntry } from '../ledger/audit-entry';
import { latestCheckpointReader } from '../ledger/checkpoint-reader';
import { buildTenantProof, type TenantProof } from '../ledger/tenant-proof';
import { verifyTenantHistory } from '../ledger/tenant-history-check';
import { verifyTenantLedger, type TenantVerdict } from '../ledger/tenant-verifier';
import { readPublicKeyFile } from './checkpoint-key-file';
import { flatten, readJsonValues } from './json-values';
import { UsageError } from './usage-error';
import { NatsUnavailableError, type CheckpointSource } from './verify-ledger';

export interface TenantFiles {
  /** The key the tenant pinned (the JSON of the well-known key route, or a PEM). */
  keyFile: string;
  entryFiles: readonly string[];
  proofFiles: readonly string[];
  /** The proof the tenant saved last time. */
  priorProofFile?: string;
  /** Links of the checkpoint series (pages of GET /v1/audit/checkpoints?cursor=<the prior checkpoint's id>). */
  checkpointFiles?: readonly string[];
  /** A witness's log of the series (JSON Lines of links), fetched from the witness. */
  witnessFile?: string;
}

/**
 * `service-fs verify-tenant`: what a tenant runs, offline, with only the pinned public key, the
 * entries it read from GET /v1/audit and the proofs it saved from GET /v1/audit/proof; with its
 * prior proof and the links since, it also checks that the service did not go back (rollback) or
 * show it another history (fork), and with a witness's log, that the witness saw the same series.
 */
export async function verifyTenantFiles(files: TenantFiles): Promise<TenantVerdict> {
  const pinned = await readPublicKeyFile(files.keyFile);
  const entries = flatten((await Promise.all(files.entryFiles.map(readJsonValues))).flat()) as TenantAuditEntry[];
  const proofs = flatten((await Promise.all(files.proofFiles.map(readJsonValues))).flat()) as TenantProof[];
  for (const entry of entries) {
    if (typeof entry?.tenant_seq !== 'string' || typeof entry.tenant_hash !== 'string')
      throw new UsageError('an entry has no tenant_seq or tenant_hash: give the entries of GET /v1/audit as a tenant reads them');
  }
  const prior = files.priorProofFile === undefined ? undefined : ((await readJsonValues(files.priorProofFile))[0] as TenantProof);
  if (prior !== undefined && (prior === null || typeof prior !== 'object' || typeof prior.checkpoint !== 'object'))
    throw new UsageError(`${files.priorProofFile} is not a proof of GET /v1/audit/proof`);
  const links = files.checkpointFiles === undefined ? undefined : flatten((await Promise.all(files.checkpointFiles.map(readJsonValues))).flat());
  const witness = files.witnessFile === undefined ? undefined : flatten(await readJsonValues(files.witnessFile));
  return verifyTenantHistory({ pinned, entries, proofs, prior, links, witness });
}

/** `service-fs verify --tenant X`: the same check, with the entries from the database and a proof of the newest checkpoint. */
export async function verifyTenantInDatabase(db: Kysely<Database>, tenantId: string, source: CheckpointSource): Promise<TenantVerdict> {
  const rows = await db.selectFrom('audit_events').selectAll().where('tenant_id', '=', tenantId).orderBy('tenant_seq').execute();
  const nc = await connect({ servers: source.natsUrl, name: 'service-fs', timeout: 5000, maxReconnectAttempts: 0 }).catch((error: unknown) => {
    throw new NatsUnavailableError(`cannot connect to NATS at ${source.natsUrl}: ${error instanceof Error ? error.message : String(error)}`);
  });
  let proofs: TenantProof[] = [];
  const notes: string[] = [];
  try {
    // The newest checkpoint of the key (or a key it rotated to); foreign messages are skipped.
    const latest = latestCheckpointReader({ jsm: () => nc.jetstreamManager(), stream: source.stream, key: () => Promise.resolve(source.publicKey) });
    const checkpoint = await latest();
    if (checkpoint === null) notes.push(`bad: missing_checkpoints: no checkpoint signed by this key in ${source.stream}`);
    else {
      const outcome = await buildTenantProof(db, tenantId, checkpoint);
      if ('proof' in outcome) proofs = [outcome.proof];
      else if ('inconsistent' in outcome)
        notes.push(`bad: rewrite: the tenant chain heads no longer give the root of the checkpoint signed at ${checkpoint.signed_at}`);
      else notes.push(`warning: the checkpoint signed at ${checkpoint.signed_at} does not cover tenant ${tenantId} yet`);
    }
  } finally {
    await nc.close().catch(() => undefined);
  }
  const verdict = verifyTenantLedger(rows.map(toTenantAuditEntry), proofs, source.publicKey);
  const lines = [...verdict.lines.filter((line) => !(proofs.length === 0 && line.startsWith('warning: no proof'))), ...notes];
  return { ok: verdict.ok && !notes.some((line) => line.startsWith('bad:')), lines };
}
