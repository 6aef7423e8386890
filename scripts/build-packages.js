#!/usr/bin/env node
// `npm run build:packages`: builds the two packages a caller installs, ready for `npm pack`:
//   packages/client  @vm-tenant/client  the typed client, compiled from src/client/ (its one copy of
//                                       the sources) with declarations, beside the OpenAPI document
//   packages/cli     @vm-tenant/cli     the `vm-tenant` CLI, one JavaScript file bundled by esbuild
//                                       with every module it imports (repository and npm), for plain
//                                       node: no tsx, no repository, no runtime dependency
// Both versions follow the API document (src/client/openapi.json): its info.version as semver
// ("1" is 1.0.0), written into each package.json here, as is the client's openapi-fetch version
// (the repository's). The output (packages/*/dist) is not committed.
'use strict';
const { spawnSync } = require('node:child_process');
const { chmodSync, copyFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const packagesDir = path.join(root, 'packages');

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** The package version of an API document version: "1" is 1.0.0, "1.2" is 1.2.0, "1.2.3" stays. */
function packageVersion(documentVersion) {
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(documentVersion);
  if (!match) throw new Error(`the OpenAPI document's info.version ${JSON.stringify(documentVersion)} is not 1, 1.2 or 1.2.3`);
  return [match[1], match[2] ?? '0', match[3] ?? '0'].join('.');
}

/** Sets fields of a package.json, rewriting the file only when one changes. */
function updateManifest(dir, update) {
  const file = path.join(dir, 'package.json');
  const before = readFileSync(file, 'utf8');
  const manifest = JSON.parse(before);
  update(manifest);
  const after = `${JSON.stringify(manifest, null, 2)}\n`;
  if (after !== before) {
    writeFileSync(file, after);
    console.error(`[build:packages] updated ${path.relative(root, file)}`);
  }
}

function run(what, args) {
  console.error(`[build:packages] ${what}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`failed: ${what}`);
}

/** A notice of each npm package esbuild bundled: name, version, license and its license text. */
function thirdPartyNotices(metafile) {
  const packages = new Map();
  for (const input of Object.keys(metafile.inputs)) {
    const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (!match) continue;
    const manifest = readJson(path.join(root, match[1], 'package.json'));
    packages.set(`${manifest.name}@${manifest.version}`, { dir: match[1], manifest });
  }
  const sections = [...packages.values()]
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name))
    .map(({ dir, manifest }) => {
      const licenseFile = readdirSync(path.join(root, dir)).find((name) => /^(licen[cs]e|copying)/i.test(name));
      const text = licenseFile ? readFileSync(path.join(root, dir, licenseFile), 'utf8').trim() : '(no license file in the package)';
      return `${manifest.name}@${manifest.version} (${manifest.license ?? 'license not stated'})\n\n${text}\n`;
    });
  return `The vm-tenant CLI bundles these npm packages:\n\n${sections.join('\n---\n\n')}`;
}

async function main() {
  const document = readJson(path.join(root, 'src', 'client', 'openapi.json'));
  const version = packageVersion(document.info.version);
  const repository = readJson(path.join(root, 'package.json'));
  const clientDir = path.join(packagesDir, 'client');
  const cliDir = path.join(packagesDir, 'cli');

  updateManifest(clientDir, (manifest) => {
    manifest.version = version;
    manifest.dependencies = { 'openapi-fetch': repository.dependencies['openapi-fetch'] };
  });
  updateManifest(cliDir, (manifest) => {
    manifest.version = version;
  });

  // The client: src/client/ compiled with declarations. tsc emits no .d.ts it was given, so the
  // generated types (schema.d.ts) are copied beside the output, with the document they come from.
  const clientDist = path.join(clientDir, 'dist');
  rmSync(clientDist, { recursive: true, force: true });
  run(`compiling src/client/ to ${path.relative(root, clientDist)}/`, [
    path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
    '-p',
    path.join(clientDir, 'tsconfig.json'),
  ]);
  copyFileSync(path.join(root, 'src', 'client', 'schema.d.ts'), path.join(clientDist, 'schema.d.ts'));
  copyFileSync(path.join(root, 'src', 'client', 'openapi.json'), path.join(clientDist, 'openapi.json'));

  // The CLI: bin/vm-tenant.js's call of main(), bundled with everything it imports.
  const cliDist = path.join(cliDir, 'dist');
  rmSync(cliDist, { recursive: true, force: true });
  console.error(`[build:packages] bundling the vm-tenant CLI into ${path.relative(root, cliDist)}/vm-tenant.js`);
  const esbuild = require('esbuild');
  const outfile = path.join(cliDist, 'vm-tenant.js');
  const result = await esbuild.build({
    stdin: {
      contents: "require('./main').main(process.argv.slice(2), process.env).then((code) => { process.exitCode = code; });",
      resolveDir: path.join(root, 'src', 'cli', 'vm-tenant'),
      sourcefile: 'vm-tenant.js',
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    outfile,
    banner: { js: `#!/usr/bin/env node\n// @vm-tenant/cli ${version}: built by scripts/build-packages.js; bundled packages in THIRD-PARTY-NOTICES.txt` },
    metafile: true,
    logLevel: 'warning',
  });
  chmodSync(outfile, 0o755);
  writeFileSync(path.join(cliDist, 'THIRD-PARTY-NOTICES.txt'), thirdPartyNotices(result.metafile));

  for (const dir of [clientDir, cliDir]) {
    if (!existsSync(path.join(dir, 'dist'))) throw new Error(`no output in ${path.relative(root, dir)}/dist`);
  }
  console.error(`[build:packages] done: packages/client, packages/cli ${version} (npm pack ./packages/client ./packages/cli)`);
}

main().catch((error) => {
  console.error(`[build:packages] ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
