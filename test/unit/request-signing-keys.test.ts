import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkContentDigest, contentDigestHeader } from '../../src/auth/content-digest';
import { normaliseEd25519PublicKey } from '../../src/auth/subject-pubkey';
import { parseSigningKey, SigningKeyError } from '../../src/client/signing-key-file';

describe('signing keys from files', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'signing-keys-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function sshKeygen(name: string, type = 'ed25519', passphrase = ''): string {
    const file = path.join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', 'unit', '-f', file]);
    return file;
  }

  function codeOf(text: string): string {
    try {
      parseSigningKey(text);
      return 'parsed';
    } catch (error) {
      return error instanceof SigningKeyError ? error.code : String(error);
    }
  }

  test('when the key is an OpenSSH private key from ssh-keygen, then its key id is the public key of its .pub file, as subject_pubkey stores it', () => {
    const file = sshKeygen('id_ed25519');
    expect(parseSigningKey(readFileSync(file, 'utf8')).keyId).toBe(normaliseEd25519PublicKey(readFileSync(`${file}.pub`, 'utf8')));
  });

  test('when the key is PEM PKCS#8, then its key id is its public key as raw base64', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const key = parseSigningKey(privateKey.export({ format: 'pem', type: 'pkcs8' }).toString());
    expect(key.keyId).toBe(normaliseEd25519PublicKey(publicKey.export({ format: 'pem', type: 'spki' }).toString()));
  });

  test('when the key is passphrase-protected, RSA, a public key or garbage, then a SigningKeyError names why', () => {
    expect(codeOf(readFileSync(sshKeygen('locked', 'ed25519', 'passphrase'), 'utf8'))).toBe('key_encrypted');
    expect(codeOf(readFileSync(sshKeygen('id_rsa', 'rsa'), 'utf8'))).toBe('key_not_ed25519');
    expect(codeOf(generateKeyPairSync('ed25519').publicKey.export({ format: 'pem', type: 'spki' }).toString())).toBe('key_invalid');
    expect(codeOf('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n')).toBe('key_invalid');
    expect(codeOf('hello')).toBe('key_invalid');
  });
});

describe('Content-Digest (RFC 9530)', () => {
  const body = Buffer.from('{"scope":"vm:read"}');
  const b64 = (algorithm: string, data: Buffer) => createHash(algorithm).update(data).digest('base64');

  test('when the field holds the sha-256 of the body, then it matches; sha-512 too, and alongside unknown algorithms', () => {
    expect(checkContentDigest(contentDigestHeader(body), body)).toBe('match');
    expect(checkContentDigest(`sha-512=:${b64('sha512', body)}:`, body)).toBe('match');
    expect(checkContentDigest(`md5=:AAAA:, sha-256=:${b64('sha256', body)}:`, body)).toBe('match');
    expect(checkContentDigest(contentDigestHeader(Buffer.alloc(0)), Buffer.alloc(0))).toBe('match');
  });

  test('when any known digest differs from the body, then mismatch, even if another one matches', () => {
    expect(checkContentDigest(contentDigestHeader(Buffer.from('{}')), body)).toBe('mismatch');
    expect(checkContentDigest(`sha-256=:${b64('sha256', body)}:, sha-512=:${b64('sha512', Buffer.from('x'))}:`, body)).toBe('mismatch');
  });

  test('when the field is missing, not a dictionary of byte sequences, or has no known algorithm, then it says which', () => {
    expect(checkContentDigest(undefined, body)).toBe('missing');
    expect(checkContentDigest('sha-256=:not base64!:', body)).toBe('malformed');
    expect(checkContentDigest(`sha-256="${b64('sha256', body)}"`, body)).toBe('malformed');
    expect(checkContentDigest('md5=:AAAA:', body)).toBe('unsupported');
  });
});
