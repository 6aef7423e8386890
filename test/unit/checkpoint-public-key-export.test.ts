import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { keyIdOf } from '../../src/ledger/checkpoint';
import { readCheckpointPublicKey } from '../../src/ledger/checkpoint-key';
import { exportCheckpointPublicKey } from '../../src/ledger/checkpoint-public-key-export';

/**
 * The worker writes the public half of its checkpoint key where the API reads it
 * (LEDGER_CHECKPOINT_PUBLIC_KEY_FILE), on a volume without the private key (docker-compose.production.yml).
 */
describe('exporting the checkpoint public key', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'public-key-export-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('when the worker exports its key to a directory of its own, then the API reads that key there, and nothing else is left in it', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const file = path.join(dir, 'checkpoint-public', 'ledger-checkpoint-key.pub.pem');
    await exportCheckpointPublicKey(publicKey, file);
    expect(keyIdOf((await readCheckpointPublicKey(file))!)).toBe(keyIdOf(publicKey));
    expect(await readdir(path.dirname(file))).toEqual(['ledger-checkpoint-key.pub.pem']);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  test('when the same key is exported again, then the file is left alone; another key replaces it', async () => {
    const file = path.join(dir, 'ledger-checkpoint-key.pub.pem');
    const first = generateKeyPairSync('ed25519').publicKey;
    await exportCheckpointPublicKey(first, file);
    const written = (await stat(file)).mtimeMs;
    await new Promise((resolve) => setTimeout(resolve, 20));
    await exportCheckpointPublicKey(first, file);
    expect((await stat(file)).mtimeMs).toBe(written);

    const second = generateKeyPairSync('ed25519').publicKey;
    await exportCheckpointPublicKey(second, file);
    expect(keyIdOf((await readCheckpointPublicKey(file))!)).toBe(keyIdOf(second));
  });
});
