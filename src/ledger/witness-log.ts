import type { KeyObject } from 'node:crypto';
import { keyIdOf, verifySignedCheckpoint } from './checkpoint';
import { walkSeries } from './checkpoint-path';
import { keyRotationFromMessage } from './checkpoint-rotation';
import { isRotation, tenantLinkHash, type TenantLink } from './tenant-link';

/**
 * A witness's log of the checkpoint series: every link it was shown, in order, each checked to
 * extend the one before under the series' key (starting from the key the witness pinned), kept by
 * someone the operator does not control and published where tenants fetch it (a file: JSON Lines,
 * one tenant link per line). A tenant whose proof names a checkpoint the witness never saw,
 * although the witness's log goes past it in time, was shown a split view.
 */
export interface WitnessLog {
  links: TenantLink[];
  hashes: Set<string>;
  /** The key that signs the next link. */
  key: KeyObject;
  tip: { hash: string; signed_at: string } | null;
}

export type WitnessOutcome = { log: WitnessLog; added: TenantLink[] } | { fork: string };

/** The log's own chain, from its first link (signed by the pinned key) on; a log that does not hold together is a fork. */
export function openWitnessLog(values: readonly unknown[], pinned: KeyObject): WitnessOutcome {
  const empty: WitnessLog = { links: [], hashes: new Set(), key: pinned, tip: null };
  if (values.length === 0) return { log: empty, added: [] };
  return extendWitnessLog(empty, values);
}

/** The log extended with the links that follow its tip in `values` (a page of GET /v1/audit/checkpoints). */
export function extendWitnessLog(log: WitnessLog, values: readonly unknown[]): WitnessOutcome {
  let start = log.tip;
  let key = log.key;
  const added: TenantLink[] = [];
  let rest = values;
  if (start === null) {
    // The first link the witness takes: signed by the pinned key (a rotation away from it counts).
    const first = values.find((value) => signedBy(value, key));
    if (first === undefined)
      return values.length === 0 ? { log, added } : { fork: `none of the ${values.length} links is signed by the pinned key ${keyIdOf(key).slice(0, 16)}…` };
    const link = first as TenantLink;
    // Links before it (signed by a key the pinned one rotated from) are history the witness did not pin.
    rest = values.slice(values.indexOf(first) + 1);
    added.push(link);
    if (isRotation(link)) key = keyRotationFromMessage(link)!.newKey;
    start = { hash: tenantLinkHash(link), signed_at: link.signed_at };
  }
  const walk = walkSeries(start.hash, key, rest);
  if (walk.fork) return { fork: walk.fork };
  const valid = new Set(walk.steps.map((step) => step.hash));
  const stray = rest.filter((value) => {
    const hash = safeHash(value);
    return hash !== null && !valid.has(hash) && !log.hashes.has(hash) && hash !== start!.hash;
  });
  if (stray.length > 0)
    return {
      fork: `${stray.length} of the links given do not extend the witnessed series from its tip (${start.hash.slice(0, 16)}…, signed at ${start.signed_at}): another history, or links out of order`,
    };
  added.push(...walk.steps.map((step) => step.link));
  const links = [...log.links, ...added];
  const last = links.at(-1);
  return {
    log: {
      links,
      hashes: new Set([...log.hashes, ...added.map(tenantLinkHash)]),
      key: walk.keys.at(-1)!,
      tip: last ? { hash: tenantLinkHash(last), signed_at: last.signed_at } : null,
    },
    added,
  };
}

function signedBy(value: unknown, key: KeyObject): boolean {
  if (value !== null && typeof value === 'object' && isRotation(value as TenantLink)) return keyRotationFromMessage(value)?.rotation.key_id === keyIdOf(key);
  return verifySignedCheckpoint(value, key) && value.v === 2;
}

function safeHash(value: unknown): string | null {
  try {
    return tenantLinkHash(value as TenantLink);
  } catch {
    return null;
  }
}
