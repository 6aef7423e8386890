import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { keyIdOf } from '../../src/ledger/checkpoint';
import { publicKeyFileSource } from '../../src/ledger/checkpoint-public-key-source';

const pem = (key: KeyObject) => key.export({ type: 'spki', format: 'pem' }).toString();
const newPublicKey = () => generateKeyPairSync('ed25519').publicKey;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'public-key-source-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the checkpoint public key the API serves', () => {
  test('when a rotation swaps the key file (as a Secret volume does), then the source serves the new key after the recheck period, and the old one until then', async () => {
    const file = path.join(dir, 'ledger-checkpoint-key.pub.pem');
    let clock = 0;
    const source = publicKeyFileSource(file, { recheckMs: 5_000, now: () => clock });
    expect(await source()).toBeNull();

    const first = newPublicKey();
    await writeFile(file, pem(first));
    expect(keyIdOf((await source())!)).toBe(keyIdOf(first));

    const second = newPublicKey();
    await writeFile(`${file}.new`, pem(second));
    await rename(`${file}.new`, file);
    clock += 1_000;
    expect(keyIdOf((await source())!)).toBe(keyIdOf(first));
    clock += 5_000;
    expect(keyIdOf((await source())!)).toBe(keyIdOf(second));
  });
});
