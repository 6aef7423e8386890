import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { fetchServedOpenApiDocument } from '../helpers/served-openapi-document';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');

/** The typed client (src/client/) is generated from the API's document; a stale copy would type real answers wrongly. */
describe('generated client', () => {
  test('when the app serves /openapi.json, then it is the document committed in src/client/openapi.json', async () => {
    const committed: unknown = JSON.parse(readFileSync(path.join(ROOT, 'src/client/openapi.json'), 'utf8'));
    expect(await fetchServedOpenApiDocument()).toEqual(committed);
  });

  test('when the generator runs with --check, then every committed generated file (document and types) is what it produces now', async () => {
    // A child process: openapi-typescript loads ESM-only dependencies that Jest's module system cannot.
    const check = run(process.execPath, ['--import', 'tsx', 'scripts/generate-client.ts', '--check'], { cwd: ROOT, timeout: 60_000 });
    await expect(check).resolves.toMatchObject({ stderr: '' });
  }, 90_000);
});
