import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import { connect } from 'nats';
import type { Database } from '../db/tables';
import { describeConnectionFailure } from '../connections/connection-failure';
import { natsConnectOptions, natsServerOf } from '../events/nats-connection';
import type { NatsSettings } from '../events/nats-env-config';
import { CheckpointStreamMissingError, readAllCheckpointTexts } from '../events/checkpoint-stream';
import { auditCheckpoints, type LedgerLookup } from '../ledger/checkpoint-audit';
import { keyIdOf } from '../ledger/checkpoint';
import { tenantHeadsAt, verifyChain } from '../ledger/ledger.repository';

export interface CheckpointSource {
  natsUrl: string;
  /** Credentials and TLS from the configuration; without it, natsUrl as it is. */
  nats?: NatsSettings;
  stream: string;
  subjectPrefix: string;
  publicKey: KeyObject;
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
  };
}

/**
 * The chain walk, then (unless checkpoints is null) the comparison with every signed checkpoint.
 * One line per finding, each naming its defect: gap, rewrite, forged_insert, truncation, fork,
 * forged_checkpoint, missing_checkpoints.
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

  const nc = await connect({ ...natsConnectOptions(checkpoints.nats ?? checkpoints.natsUrl), name: 'service-fs', timeout: 5000, maxReconnectAttempts: 0 }).catch((error: unknown) => {
    throw new NatsUnavailableError(`cannot connect to NATS at ${natsServerOf(checkpoints.natsUrl)}: ${describeConnectionFailure(error)}`);
  });
  try {
    let stored;
    try {
      stored = await readAllCheckpointTexts(await nc.jetstreamManager(), checkpoints.stream);
    } catch (error) {
      if (!(error instanceof CheckpointStreamMissingError)) throw error;
      lines.push(`bad: missing_checkpoints: ${error.message}: the signed checkpoints are gone`);
      return { ok: false, lines };
    }
    const report = await auditCheckpoints(stored, checkpoints.publicKey, ledgerLookup(db));
    for (const finding of report.findings) lines.push(`bad: ${finding.defect}: ${finding.message}`);
    const latest = report.checkpoints.reduce<(typeof report.checkpoints)[number] | null>((top, c) => (top === null || BigInt(c.head.seq) > BigInt(top.head.seq) ? c : top), null);
    if (report.findings.length === 0) {
      const keyId = keyIdOf(checkpoints.publicKey).slice(0, 16);
      lines.push(
        latest === null
          ? `warning: no signed checkpoints in ${checkpoints.stream} yet: only the chain was checked`
          : `ok: all ${report.checkpoints.length} checkpoints signed by key ${keyId} match the ledger; the latest covers seq ${latest.head.seq} (signed ${latest.signed_at})`,
      );
    }
    return { ok: chain.valid && report.findings.length === 0, lines };
  } finally {
    await nc.close().catch(() => undefined);
  }
}
