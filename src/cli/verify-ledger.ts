import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import { connect } from 'nats';
import type { Database } from '../db/tables';
import { describeConnectionFailure } from '../connections/connection-failure';
import { natsConnectOptions, natsServerOf } from '../events/nats-connection';
import type { NatsSettings } from '../events/nats-env-config';
import { CheckpointStreamMissingError, readAllCheckpointTexts } from '../ledger/checkpoint-stream';
import { auditCheckpoints, type CheckpointReport, type LedgerLookup } from '../ledger/checkpoint-audit';
import { keyIdOf } from '../ledger/checkpoint';
import type { LocalLast } from '../ledger/checkpoint-chain';
import { readCheckpointState } from '../ledger/checkpoint-state';
import { entryTreeHeadsAt } from '../ledger/entry-tree.repository';
import { verifyChain } from '../ledger/chain-verifier';
import { tenantHeadsAt } from '../ledger/ledger-queries';
import { UsageError } from './usage-error';

export interface CheckpointSource {
  natsUrl: string;
  /** Credentials and TLS from the configuration; without it, natsUrl as it is. */
  nats?: NatsSettings;
  stream: string;
  subjectPrefix: string;
  publicKey: KeyObject;
  /** The signer's last link (its state file), to be found on the stream and compared with the ledger. */
  lastCheckpoint?: LocalLast;
}

export class NatsUnavailableError extends Error {
  override readonly name = 'NatsUnavailableError';
}

export interface VerifyOutcome {
  ok: boolean;
  lines: string[];
}

function ledgerLookup(db: Kysely<Database>): LedgerLookup {
  return {
    async headSeq() {
      const top = await db.selectFrom('audit_events').select('seq').orderBy('seq', 'desc').limit(1).executeTakeFirst();
      return top?.seq ?? null;
    },
    entryByEventId: (eventId) => db.selectFrom('audit_events').select(['seq', 'hash']).where('event_id', '=', eventId).executeTakeFirst(),
    tenantHeadsAt: (seq) => tenantHeadsAt(db, seq),
    entryTreesAt: (seqs) => entryTreeHeadsAt(db, seqs),
  };
}

/** Reads the signer's state file for verify (checkpoint-state.ts). */
export async function readLastCheckpointFile(file: string): Promise<LocalLast & { stream: string }> {
  const state = await readCheckpointState(file).catch((error: unknown) => {
    throw new UsageError(`cannot read the signer's last checkpoint ${file}: ${error instanceof Error ? error.message : String(error)}`);
  });
  if (state === null) throw new UsageError(`cannot read the signer's last checkpoint ${file}: no such file`);
  return { file, stream: state.stream, link: state.link, checkpoint: state.checkpoint ?? undefined };
}

const short = (keyId: string) => keyId.slice(0, 16);

function summary(report: CheckpointReport, stream: string, publicKey: KeyObject): string[] {
  const latest = report.checkpoints.reduce<(typeof report.checkpoints)[number] | null>(
    (top, c) => (top === null || BigInt(c.head.seq) > BigInt(top.head.seq) ? c : top),
    null,
  );
  if (latest === null) return [`warning: no signed checkpoints in ${stream} yet: only the chain was checked`];
  const keys = report.series.keyIds.length > 0 ? report.series.keyIds : [keyIdOf(publicKey)];
  const { links, rotations, legacy } = report.series;
  // One line, ending with the series: one chain of links, each naming the one before it.
  const extras = [
    links.length > 0 ? `stream message ${links[0]!.streamSeq}` : null,
    rotations > 0 ? `${rotations} key rotation${rotations === 1 ? '' : 's'}` : null,
    legacy > 0 ? `after ${legacy} version 1 checkpoint${legacy === 1 ? '' : 's'}` : null,
  ].filter(Boolean);
  const series = links.length > 0 ? `, in one series of ${links.length} link${links.length === 1 ? '' : 's'} from its genesis (${extras.join('; ')})` : '';
  return [
    `ok: all ${report.checkpoints.length} checkpoints signed by key${keys.length === 1 ? '' : 's'} ${keys.map(short).join(', ')} match the ledger; the latest covers seq ${latest.head.seq} (signed ${latest.signed_at})${series}`,
  ];
}

/**
 * The chain walk, then (unless checkpoints is null) the checkpoint stream: the series of links
 * from its genesis (checkpoint-chain.ts), every foreign message named, the signer's last link found
 * on it; and the comparison of the ledger with every signed checkpoint (head, tenant tree, entry
 * tree). One line per finding, each naming its defect: gap, rewrite, forged_insert, truncation,
 * fork, forged_checkpoint, missing_checkpoints; warnings (a repeated link, a version 1 checkpoint
 * after the series began) do not fail it.
 */
export async function verifyLedger(db: Kysely<Database>, checkpoints: CheckpointSource | null): Promise<VerifyOutcome> {
  const lines: string[] = [];
  const chain = await verifyChain(db);
  lines.push(
    chain.valid
      ? `ok: all ${chain.checked} entries valid`
      : `bad: entry seq ${chain.first_bad_seq}: ${chain.defect}: ${chain.reason} (${chain.checked} entries before it are valid)`,
  );
  if (checkpoints === null) return { ok: chain.valid, lines };

  const nc = await connect({
    ...natsConnectOptions(checkpoints.nats ?? checkpoints.natsUrl),
    name: 'service-fs',
    timeout: 5000,
    maxReconnectAttempts: 0,
  }).catch((error: unknown) => {
    throw new NatsUnavailableError(`cannot connect to NATS at ${natsServerOf(checkpoints.natsUrl)}: ${describeConnectionFailure(error)}`);
  });
  try {
    const found: string[] = [];
    let stored;
    try {
      stored = await readAllCheckpointTexts(await nc.jetstreamManager(), checkpoints.stream);
    } catch (error) {
      if (!(error instanceof CheckpointStreamMissingError)) throw error;
      found.push(`bad: missing_checkpoints: ${error.message}: the signed checkpoints are gone`);
      stored = { missingBefore: 0, messages: [] };
    }
    const report = await auditCheckpoints(stored, checkpoints.publicKey, ledgerLookup(db), checkpoints.lastCheckpoint);
    for (const finding of report.findings) found.push(`bad: ${finding.defect}: ${finding.message}`);
    for (const warning of report.warnings) found.push(`warning: ${warning}`);
    const ok = found.every((line) => !line.startsWith('bad:'));
    if (ok) found.push(...summary(report, checkpoints.stream, checkpoints.publicKey));
    lines.push(...found);
    return { ok: chain.valid && ok, lines };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
