import type { KeyObject } from 'node:crypto';
import { keyIdOf, verifySignedCheckpoint, type SignedCheckpoint } from './checkpoint';
import { keyRotationFromMessage } from './checkpoint-rotation';
import { isRotation, tenantLinkHash, type TenantLink } from './tenant-link';

/**
 * What a tenant (or a witness) checks between two checkpoints it holds, with the links the service
 * gave it in between (GET /v1/audit/checkpoints?cursor=…), like a Certificate Transparency client
 * checking that a newer tree head extends the one it saw:
 * - the newer checkpoint is reached from the older one link by link, each naming the one before it
 *   (`previous`) and signed by the series' key at that point (a rotation, signed by the old key and
 *   co-signed by the new one, hands the key over); then the service has one history, and the
 *   newer checkpoint extends what the tenant saw;
 * - `rollback`: the checkpoint shown now is older than the one the tenant saw before;
 * - `fork`: it is not older, but no chain of links leads to it (a split view: another history,
 *   signed with the same key, shown to this tenant), or two links signed by the key follow one;
 * - `forged_checkpoint`: the older checkpoint is not signed by the pinned key.
 */
export type PathDefect = 'rollback' | 'fork' | 'forged_checkpoint';

export type PathOutcome =
  /** `keys`: the pinned key and every key the path rotated to, in order; the last signs `later`. */
  { ok: true; keys: KeyObject[]; links: number } | { ok: false; defect: PathDefect; message: string };

export interface SeriesWalk {
  /** The links after the start, in series order, with their hashes. */
  steps: Array<{ hash: string; link: TenantLink }>;
  /** The key that signed the start, then each key a rotation handed over to. */
  keys: KeyObject[];
  /** Two distinct links, both valid, follow the same one: two histories were signed. */
  fork: string | null;
}

const short = (hash: string) => `${hash.slice(0, 16)}…`;

/** The links that follow `startHash`, one after the other, valid under the key of each point; foreign values are skipped. */
export function walkSeries(startHash: string, startKey: KeyObject, values: readonly unknown[]): SeriesWalk {
  const byPrevious = new Map<string, unknown[]>();
  for (const value of values) {
    const previous = (value as { previous?: unknown } | null)?.previous;
    if (typeof previous !== 'string') continue;
    byPrevious.set(previous, [...(byPrevious.get(previous) ?? []), value]);
  }
  const keys = [startKey];
  const steps: SeriesWalk['steps'] = [];
  const seen = new Set([startHash]);
  let tip = startHash;
  for (;;) {
    const key = keys.at(-1)!;
    const next = new Map<string, { link: TenantLink; newKey: KeyObject | null }>();
    for (const candidate of byPrevious.get(tip) ?? []) {
      const valid = validLink(candidate, key);
      if (valid) next.set(tenantLinkHash(valid.link), valid);
    }
    if (next.size > 1)
      return { steps, keys, fork: `${next.size} links signed by key ${short(keyIdOf(key))} follow the link ${short(tip)}: two histories were signed` };
    const [entry] = next.entries();
    if (entry === undefined || seen.has(entry[0])) return { steps, keys, fork: null };
    const [hash, { link, newKey }] = entry;
    steps.push({ hash, link });
    seen.add(hash);
    if (newKey) keys.push(newKey);
    tip = hash;
  }
}

function validLink(value: unknown, key: KeyObject): { link: TenantLink; newKey: KeyObject | null } | null {
  if (value !== null && typeof value === 'object' && isRotation(value as TenantLink)) {
    const found = keyRotationFromMessage(value);
    return found && found.rotation.key_id === keyIdOf(key) ? { link: found.rotation, newKey: found.newKey } : null;
  }
  return verifySignedCheckpoint(value, key) && value.v === 2 ? { link: value, newKey: null } : null;
}

/** Whether `later` extends `prior` through `links`, starting from the pinned key (which must have signed `prior`). */
export function verifyCheckpointPath(prior: SignedCheckpoint, later: SignedCheckpoint, links: readonly unknown[], pinned: KeyObject): PathOutcome {
  if (!verifySignedCheckpoint(prior, pinned)) {
    return {
      ok: false,
      defect: 'forged_checkpoint',
      message: `the prior proof's checkpoint (signed at ${String((prior as { signed_at?: unknown }).signed_at)}) is not signed by the pinned key ${short(keyIdOf(pinned))}`,
    };
  }
  const priorHash = tenantLinkHash(prior);
  const laterHash = tenantLinkHash(later);
  if (priorHash === laterHash) return { ok: true, keys: [pinned], links: 0 };
  const walk = walkSeries(priorHash, pinned, links);
  const reached = walk.steps.findIndex((step) => step.hash === laterHash);
  if (reached >= 0) {
    const rotations = walk.steps.slice(0, reached + 1).filter((step) => isRotation(step.link)).length;
    return { ok: true, keys: walk.keys.slice(0, rotations + 1), links: reached + 1 };
  }
  if (walk.fork) return { ok: false, defect: 'fork', message: walk.fork };
  if (later.signed_at < prior.signed_at) {
    return {
      ok: false,
      defect: 'rollback',
      message: `the checkpoint shown now (signed at ${later.signed_at}) is older than the one of the prior proof (signed at ${prior.signed_at}): the service went back in its history`,
    };
  }
  return {
    ok: false,
    defect: 'fork',
    message: `no chain of signed links leads from the prior proof's checkpoint (signed at ${prior.signed_at}) to the one shown now (signed at ${later.signed_at}; ${walk.steps.length} links followed): it belongs to another history (a split view), or the links given are incomplete`,
  };
}
