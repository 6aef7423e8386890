/**
 * `npm run client:generate`: writes the OpenAPI document the API serves (src/client/openapi.json) and
 * the types openapi-typescript derives from it (src/client/schema.d.ts), which the typed client in
 * src/client/ is built on. Re-run it whenever a route or its documentation changes.
 *
 * `--check` writes nothing: it exits 1, naming each stale file, when a committed file differs from
 * what the generator produces now (test/unit/client-up-to-date.test.ts runs it in CI).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';
import { buildOpenApiDocument } from '../src/api/openapi/openapi-document';

/** The version src/api/app.ts serves at /openapi.json; the up-to-date test compares with the served document. */
export const SERVED_DOCUMENT_VERSION = '1';

const CLIENT_DIR = path.resolve(__dirname, '../src/client');
export const DOCUMENT_FILE = path.join(CLIENT_DIR, 'openapi.json');
export const SCHEMA_FILE = path.join(CLIENT_DIR, 'schema.d.ts');

/** The contents of every generated file, by absolute path. */
export async function generateClientFiles(): Promise<Map<string, string>> {
  const document = buildOpenApiDocument(SERVED_DOCUMENT_VERSION);
  // Cast: the builder returns plain JSON; openapi-typescript validates it (redocly) and throws on an invalid document.
  const types = astToString(await openapiTS(document as unknown as Parameters<typeof openapiTS>[0], { silent: true }));
  return new Map([
    [DOCUMENT_FILE, `${JSON.stringify(document, null, 2)}\n`],
    [SCHEMA_FILE, `${COMMENT_HEADER}${types}`],
  ]);
}

function readOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

async function main(argv: string[]): Promise<number> {
  const check = argv.includes('--check');
  const files = await generateClientFiles();
  const stale = [...files].filter(([file, content]) => readOrEmpty(file) !== content).map(([file]) => path.relative(process.cwd(), file));
  if (check) {
    if (stale.length === 0) return 0;
    console.error(`stale generated client file(s): ${stale.join(', ')}\nrun \`npm run client:generate\` and commit the result`);
    return 1;
  }
  for (const [file, content] of files) writeFileSync(file, content);
  console.log(stale.length ? `wrote ${stale.map((file) => path.relative(process.cwd(), file)).join(', ')}` : 'generated client files are up to date');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
