import type { KeyObject } from 'node:crypto';
import { keyIdOf, type StoredCheckpoint } from './checkpoint';
import { keyRotationFromMessage } from './checkpoint-rotation';
import { keyRingOf, parseLinkMessage, parseLinkValue, signerOf, type Link } from './checkpoint-link';

/**
 * What the checkpoint stream itself can reveal, before any comparison with the ledger:
 * - `forged_checkpoint`: a message that is not a link signed by a key of the series (a foreign
 *   message: unsigned, badly signed, another key), a link signed by a key that was not the series'
 *   key at that point, or a series that the given key signed nothing of;
 * - `missing_checkpoints`: the stream's first messages are gone, the series on the stream follows
 *   a link that is not there, or the signer's last checkpoint (its state file) is not on the stream;
 * - `fork`: two links that follow the same one, or a second series started on the stream (a reset).
 */
export type ChainDefect = 'forged_checkpoint' | 'missing_checkpoints' | 'fork';

export interface ChainFinding {
  defect: ChainDefect;
  message: string;
}

export interface StreamMessage {
  streamSeq: number;
  text: string;
}

/** Where a checkpoint came from: a stream message, or a file (the signer's state). */
export interface LocatedCheckpoint {
  streamSeq: number | null;
  checkpoint: StoredCheckpoint;
}

export interface ChainReport {
  findings: ChainFinding[];
  warnings: string[];
  /** Every checkpoint signed by a key of the series, in stream order (then the signer's), for the comparison with the ledger. */
  checkpoints: LocatedCheckpoint[];
  /** The main series: its links in order, the keys that signed them, and the version 1 checkpoints it follows. */
  series: { links: Array<{ streamSeq: number; link: Link }>; keyIds: string[]; rotations: number; legacy: number };
}

/** The signer's last link, from its state file (checkpoint-state.ts), to be found on the stream. */
export interface LocalLast {
  file: string;
  link: unknown;
  /** The last checkpoint, when the last link is a key rotation. */
  checkpoint?: unknown;
}

const at = (streamSeq: number) => `stream message ${streamSeq}`;
const short = (keyId: string) => keyId.slice(0, 16);

/**
 * Checks the links on the checkpoint stream against each other: one chain from its genesis, each
 * link naming the one before it and signed by the series' key at that point, key changes only by
 * rotation links, the given (pinned) key among the signers. Pure: the ledger comparison is
 * checkpoint-audit.ts.
 */
export function verifyCheckpointChain(messages: readonly StreamMessage[], missingBefore: number, pinned: KeyObject, local?: LocalLast): ChainReport {
  const findings: ChainFinding[] = [];
  const warnings: string[] = [];
  if (missingBefore > 0)
    findings.push({ defect: 'missing_checkpoints', message: `stream messages 1-${missingBefore} are gone: the first checkpoints were removed` });

  const rotations = messages.flatMap(({ text }) => {
    try {
      const found = keyRotationFromMessage(JSON.parse(text));
      return found ? [found] : [];
    } catch {
      return [];
    }
  });
  const ring = keyRingOf([pinned], rotations);
  const parsed = messages.map((m) => ({ ...m, parsed: parseLinkMessage(m.text, ring) }));

  const byHash = new Map<string, { streamSeq: number; link: Link }>();
  const legacy: Array<{ streamSeq: number; link: Link & { kind: 'legacy' } }> = [];
  const main: Array<{ streamSeq: number; link: Link }> = [];
  // Links off the main chain, with what they say (decided once the series' keys are known).
  const side: Array<{ streamSeq: number; link: Link; finding: ChainFinding | null }> = [];
  const sideTips = new Set<string>();
  let activeKey: string | null = null;
  const seriesKeys = new Set<string>();

  for (const { streamSeq, parsed: p } of parsed) {
    if ('foreign' in p) {
      findings.push({ defect: 'forged_checkpoint', message: `${at(streamSeq)} is a foreign message: ${p.foreign}` });
      continue;
    }
    const link = p.link;
    const again = byHash.get(link.hash);
    if (again) {
      warnings.push(`${at(streamSeq)} repeats ${at(again.streamSeq)} (the same link published again): ignored`);
      continue;
    }
    byHash.set(link.hash, { streamSeq, link });
    if (link.kind === 'legacy') {
      if (main.length > 0)
        warnings.push(
          `${at(streamSeq)} is a version 1 checkpoint after the chained series began (an older worker still signs): compared with the ledger, outside the chain`,
        );
      legacy.push({ streamSeq, link });
      continue;
    }
    const previous = link.kind === 'rotation' ? link.rotation.previous : link.checkpoint.previous;
    const tip = main.at(-1);
    const lastLegacy = legacy.at(-1);
    const before = previous === null ? undefined : byHash.get(previous);
    let onMain = false;
    let finding: ChainFinding | null = null;
    if (tip === undefined) {
      onMain = true;
      if (previous === null && legacy.length > 0) {
        findings.push({
          defect: 'fork',
          message: `${at(streamSeq)} starts a new checkpoint series although the stream holds earlier checkpoints (${at(legacy[0]!.streamSeq)} on): the history was reset`,
        });
      } else if (previous !== null && before === undefined) {
        findings.push({
          defect: 'missing_checkpoints',
          message: `${at(streamSeq)}, the first link of the series on the stream, follows a link (${short(previous)}…) that is not on the stream: the earlier checkpoints are gone (the stream was deleted and recreated, or its first messages removed)`,
        });
      } else if (before !== undefined && before.link !== lastLegacy?.link) {
        findings.push({
          defect: 'fork',
          message: `${at(streamSeq)} begins the series after ${at(before.streamSeq)}, but version 1 checkpoints follow that one up to ${at(lastLegacy!.streamSeq)}`,
        });
      }
    } else if (previous === tip.link.hash) {
      onMain = true;
    } else if (previous !== null && sideTips.has(previous)) {
      sideTips.delete(previous); // a side branch going on: reported where it split off
    } else if (previous === null) {
      finding = {
        defect: 'fork',
        message: `${at(streamSeq)} starts a new checkpoint series after ${main.length} links of the series from ${at(main[0]!.streamSeq)}: the checkpoint history was reset`,
      };
    } else if (before !== undefined) {
      finding = { defect: 'fork', message: `${at(streamSeq)} follows ${at(before.streamSeq)}, which another link already follows: two histories were signed` };
    } else {
      finding = { defect: 'missing_checkpoints', message: `${at(streamSeq)} follows a link (${short(previous)}…) that is not on the stream` };
    }
    const signer = signerOf(link);
    if (onMain && activeKey !== null && signer !== activeKey) {
      onMain = false;
      finding = {
        defect: 'forged_checkpoint',
        message: `${at(streamSeq)} is signed by key ${short(signer)}, but the series' key at that point is ${short(activeKey)} (a key changes only by a rotation signed with the key before it)`,
      };
    }
    if (onMain) {
      activeKey = link.kind === 'rotation' ? link.rotation.new_key_id : signer;
      seriesKeys.add(signer);
      if (link.kind === 'rotation') seriesKeys.add(link.rotation.new_key_id);
      main.push({ streamSeq, link });
    } else {
      sideTips.add(link.hash);
      side.push({ streamSeq, link, finding });
    }
  }
  // Off the chain, a link of a key the series never had is a foreign message; one of the series'
  // keys is a second history (a fork, a reset) or the trace of a lost one.
  const untrusted = new Set<string>();
  for (const { streamSeq, link, finding } of side) {
    const signer = signerOf(link);
    if (finding?.defect === 'forged_checkpoint') untrusted.add(link.hash);
    else if (!seriesKeys.has(signer)) {
      untrusted.add(link.hash);
      findings.push({
        defect: 'forged_checkpoint',
        message: `${at(streamSeq)} is a foreign message: a link signed by key ${short(signer)}, which is not a key of this series`,
      });
      continue;
    }
    if (finding) findings.push(finding);
  }

  // Version 1 checkpoints predate rotations: they count when signed by the series' first key (or,
  // on a stream without a series, the given key).
  const firstKey = main.length > 0 ? signerOf(main[0]!.link) : keyIdOf(pinned);
  const pinnedId = keyIdOf(pinned);
  const checkpoints: LocatedCheckpoint[] = [];
  for (const { streamSeq, parsed: p } of parsed) {
    if ('foreign' in p) continue;
    const { link } = p;
    if (link.kind === 'legacy') {
      if (link.checkpoint.key_id === firstKey) checkpoints.push({ streamSeq, checkpoint: link.checkpoint });
      else
        findings.push({
          defect: 'forged_checkpoint',
          message: `${at(streamSeq)} is a version 1 checkpoint signed by key ${short(link.checkpoint.key_id)}, not by the series' first key ${short(firstKey)}`,
        });
    } else if (link.kind === 'checkpoint' && byHash.get(link.hash)?.streamSeq === streamSeq && !untrusted.has(link.hash)) {
      checkpoints.push({ streamSeq, checkpoint: link.checkpoint });
    }
  }
  if (main.length > 0 && !seriesKeys.has(pinnedId)) {
    findings.push({
      defect: 'forged_checkpoint',
      message: `no link of the checkpoint series on the stream is signed by the given key ${short(pinnedId)}; it is signed by ${[...seriesKeys].map(short).join(', ')}`,
    });
  }
  if (main.length === 0 && legacy.length > 0 && !legacy.some((l) => l.link.checkpoint.key_id === pinnedId)) {
    findings.push({ defect: 'forged_checkpoint', message: `no checkpoint on the stream is signed by the given key ${short(pinnedId)}` });
  }

  if (local) checkLocalLast(local, ring, byHash, findings, checkpoints);
  return {
    findings,
    warnings,
    checkpoints,
    series: {
      links: main,
      keyIds: main.length > 0 ? [...seriesKeys] : legacy.length > 0 ? [firstKey] : [],
      rotations: main.filter((l) => l.link.kind === 'rotation').length,
      legacy: legacy.length,
    },
  };
}

function checkLocalLast(
  local: LocalLast,
  ring: ReadonlyMap<string, KeyObject>,
  byHash: ReadonlyMap<string, { streamSeq: number }>,
  findings: ChainFinding[],
  checkpoints: LocatedCheckpoint[],
): void {
  const parsed = parseLinkValue(local.link, ring);
  if ('foreign' in parsed) {
    findings.push({ defect: 'forged_checkpoint', message: `the signer's last checkpoint in ${local.file} is ${parsed.foreign}` });
    return;
  }
  const { link } = parsed;
  const what =
    link.kind === 'rotation'
      ? `key rotation signed at ${link.rotation.signed_at}`
      : `checkpoint signed at ${link.checkpoint.signed_at} (seq ${link.checkpoint.head.seq})`;
  if (!byHash.has(link.hash)) {
    findings.push({
      defect: 'missing_checkpoints',
      message: `the signer's last link, the ${what} recorded in ${local.file}, is not on the stream: the stream was deleted, replaced or cut back`,
    });
  }
  const last = link.kind === 'rotation' ? (local.checkpoint === undefined ? null : parseLinkValue(local.checkpoint, ring)) : parsed;
  const lastLink = last !== null && 'link' in last ? last.link : null;
  if (lastLink !== null && lastLink.kind !== 'rotation' && !checkpoints.some((c) => c.checkpoint.signature === lastLink.checkpoint.signature)) {
    checkpoints.push({ streamSeq: null, checkpoint: lastLink.checkpoint });
  }
}
