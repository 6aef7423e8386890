import { createHash } from 'node:crypto';
import { inclusionPath, leafHash, merkleRoot, verifyInclusion } from '../../src/ledger/merkle';

const h = (...hex: string[]) =>
  createHash('sha256')
    .update(Buffer.concat(hex.map((x) => Buffer.from(x, 'hex'))))
    .digest('hex');
const leaves = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

describe('RFC 6962 Merkle tree', () => {
  test('when hashing, then leaves take a 0x00 prefix, nodes 0x01, and the empty tree is SHA-256 of nothing', () => {
    expect(leafHash(Buffer.from(''))).toBe(h('00'));
    expect(merkleRoot([])).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    // The RFC 6962 test vector: a single empty leaf.
    expect(leafHash(Buffer.alloc(0))).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const [a, b, c] = leaves(3);
    expect(merkleRoot([a!])).toBe(a);
    expect(merkleRoot([a!, b!])).toBe(h('01', a!, b!));
    // Three leaves split 2 + 1: the largest power of two below 3.
    expect(merkleRoot([a!, b!, c!])).toBe(h('01', h('01', a!, b!), c!));
  });

  test('when every leaf of trees of 1 to 33 leaves is proved, then its path verifies, and nothing else does', () => {
    for (let size = 1; size <= 33; size += 1) {
      const tree = leaves(size);
      const root = merkleRoot(tree);
      for (let index = 0; index < size; index += 1) {
        const path = inclusionPath(index, tree);
        expect(verifyInclusion(tree[index]!, index, size, path, root)).toBe(true);
        // Another leaf, index, size or root, or a changed or shortened path: refused.
        expect(verifyInclusion(leafHash(Buffer.from('other')), index, size, path, root)).toBe(false);
        if (size > 1) {
          expect(verifyInclusion(tree[index]!, (index + 1) % size, size, path, root)).toBe(false);
          expect(verifyInclusion(tree[index]!, index, size, path.slice(1), root)).toBe(false);
          expect(verifyInclusion(tree[index]!, index, size, [h('ff'), ...path.slice(1)], root)).toBe(false);
        }
        expect(verifyInclusion(tree[index]!, index, size, path, h('ff'))).toBe(false);
      }
    }
  });
});
