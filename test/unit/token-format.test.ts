import { createHash } from 'node:crypto';
import { generateToken, hashesEqual, hashToken, isWellFormedToken, newTokenId, TOKEN_PREFIX } from '../../src/auth/token-format';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

describe('token format', () => {
  test('when a token is generated, then it has the vmt_ prefix, 36 base62 characters and a valid checksum', () => {
    for (let i = 0; i < 1000; i++) {
      const token = generateToken();
      expect(token.startsWith(TOKEN_PREFIX)).toBe(true);
      expect(token).toMatch(/^vmt_[0-9A-Za-z]{36}$/);
      expect(isWellFormedToken(token)).toBe(true);
    }
  });

  test('when 10,000 tokens are generated, then all are distinct', () => {
    const tokens = new Set(Array.from({ length: 10_000 }, () => generateToken()));
    expect(tokens.size).toBe(10_000);
  });

  test('when 10,000 token ids are generated, then all are distinct and never look like a secret', () => {
    const ids = Array.from({ length: 10_000 }, () => newTokenId());
    expect(new Set(ids).size).toBe(10_000);
    for (const id of ids.slice(0, 100)) {
      expect(id).toMatch(/^tok_[0-9A-Za-z]{20}$/);
      expect(isWellFormedToken(id)).toBe(false);
    }
  });

  test('when any one character after the prefix is changed, then the checksum no longer matches', () => {
    for (let round = 0; round < 20; round++) {
      const token = generateToken();
      for (let i = TOKEN_PREFIX.length; i < token.length; i++) {
        const current = ALPHABET.indexOf(token[i]!);
        for (const step of [1, 17, 61]) {
          const changed = token.slice(0, i) + ALPHABET[(current + step) % 62] + token.slice(i + 1);
          expect(isWellFormedToken(changed)).toBe(false);
        }
      }
    }
  });

  test('when a token has the wrong prefix, length or characters, then it is not well formed', () => {
    const token = generateToken();
    expect(isWellFormedToken(token.replace(/^vmt_/, 'vmx_'))).toBe(false);
    expect(isWellFormedToken(token.slice(0, -1))).toBe(false);
    expect(isWellFormedToken(`${token}0`)).toBe(false);
    expect(isWellFormedToken(`${token.slice(0, 10)}-${token.slice(11)}`)).toBe(false);
    expect(isWellFormedToken(` ${token}`)).toBe(false);
    expect(isWellFormedToken('')).toBe(false);
  });

  test('when a token is hashed, then the hash is its hex SHA-256 and not the token', () => {
    const token = generateToken();
    const hash = hashToken(token);
    expect(hash).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(hash).not.toContain(token.slice(TOKEN_PREFIX.length));
  });
});

describe('hashesEqual', () => {
  test('when both hashes are the same, then they are equal', () => {
    const hash = hashToken(generateToken());
    expect(hashesEqual(hash, hash)).toBe(true);
    expect(hashesEqual(hash, hash.toUpperCase())).toBe(true);
  });

  test('when the hashes differ in one digit or in length, then they are not equal', () => {
    const hash = hashToken(generateToken());
    const flipped = hash.slice(0, -1) + (hash.endsWith('0') ? '1' : '0');
    expect(hashesEqual(hash, flipped)).toBe(false);
    expect(hashesEqual(hash, hashToken(generateToken()))).toBe(false);
    expect(hashesEqual(hash, hash.slice(0, 62))).toBe(false);
    expect(hashesEqual(hash, '')).toBe(false);
  });

  test('when either side is not a hex SHA-256, then they are not equal', () => {
    expect(hashesEqual('', '')).toBe(false);
    expect(hashesEqual('not-hex', 'also-not-hex')).toBe(false);
    expect(hashesEqual('zz'.repeat(32), 'yy'.repeat(32))).toBe(false);
  });
});
