import { createHash } from 'node:crypto';

/**
 * RFC 6962 (Certificate Transparency) Merkle tree hashing, section 2.1: leaves hashed with a 0x00
 * prefix and interior nodes with 0x01, so a leaf can never pass for a node; a tree of n leaves
 * splits at the largest power of two below n. Hashes are hex strings.
 */
const sha256 = (...parts: Buffer[]): Buffer => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

export function leafHash(data: Buffer): string {
  return sha256(Buffer.from([0x00]), data).toString('hex');
}

export function nodeHash(left: string, right: string): string {
  return sha256(Buffer.from([0x01]), Buffer.from(left, 'hex'), Buffer.from(right, 'hex')).toString('hex');
}

/** The largest power of two smaller than n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) over leaf hashes. The empty tree's hash is SHA-256 of nothing. */
export function merkleRoot(leaves: readonly string[]): string {
  if (leaves.length === 0) return sha256().toString('hex');
  if (leaves.length === 1) return leaves[0]!;
  const k = split(leaves.length);
  return nodeHash(merkleRoot(leaves.slice(0, k)), merkleRoot(leaves.slice(k)));
}

/** PATH(m, D[n]): the sibling hashes from leaf m up to the root, nearest first. */
export function inclusionPath(index: number, leaves: readonly string[]): string[] {
  if (index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is outside a tree of ${leaves.length}`);
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return index < k
    ? [...inclusionPath(index, leaves.slice(0, k)), merkleRoot(leaves.slice(k))]
    : [...inclusionPath(index - k, leaves.slice(k)), merkleRoot(leaves.slice(0, k))];
}

/** RFC 9162 section 2.1.3.2: whether `path` proves leaf `index` of a tree of `size` leaves has `root`. */
export function verifyInclusion(leaf: string, index: number, size: number, path: readonly string[], root: string): boolean {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r === root;
}

/**
 * The right edge of an RFC 6962 tree as it grows one leaf at a time (a "compact range"): the roots
 * of the perfect subtrees that the binary digits of the size give, largest first. Appending a leaf
 * merges equal neighbours; the root folds them from the right. O(log n) memory, so a signer can
 * follow a ledger of any length without holding its leaves.
 */
export class MerkleFrontier {
  private constructor(
    private readonly nodes: Array<{ height: number; hash: string }>,
    private count: bigint,
  ) {}

  static empty(): MerkleFrontier {
    return new MerkleFrontier([], 0n);
  }

  get size(): bigint {
    return this.count;
  }

  append(leaf: string): void {
    let node = { height: 0, hash: leaf };
    while (this.nodes.length > 0 && this.nodes[this.nodes.length - 1]!.height === node.height) {
      const left = this.nodes.pop()!;
      node = { height: node.height + 1, hash: nodeHash(left.hash, node.hash) };
    }
    this.nodes.push(node);
    this.count += 1n;
  }

  /** MTH of the leaves appended so far (SHA-256 of nothing for none), as merkleRoot computes it. */
  root(): string {
    if (this.nodes.length === 0) return merkleRoot([]);
    let hash = this.nodes[this.nodes.length - 1]!.hash;
    for (let i = this.nodes.length - 2; i >= 0; i -= 1) hash = nodeHash(this.nodes[i]!.hash, hash);
    return hash;
  }

  clone(): MerkleFrontier {
    return new MerkleFrontier([...this.nodes], this.count);
  }
}
