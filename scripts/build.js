#!/usr/bin/env node
// `npm run build`: compiles src/ to JavaScript in dist/ (tsconfig.build.json), then bundles the
// workflow code ahead of time into dist/workflow-bundle.js, as Temporal's `production` sample
// does, so that production workers start on plain `node` without webpack or tsx:
//   node dist/api/server.js | node dist/workers/worker.js | node dist/cli/migrate.js
// An optional argument builds elsewhere (the build test does); it must be inside the repository,
// because the output resolves its packages from the repository's node_modules.
'use strict';
const { spawnSync } = require('node:child_process');
const { rmSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const outDir = path.resolve(root, process.argv[2] || 'dist');
if (path.relative(root, outDir).startsWith('..') || outDir === root) {
  console.error(`[build] the output directory must be inside ${root}, got ${outDir}`);
  process.exit(2);
}

function step(what, command, args) {
  console.error(`[build] ${what}`);
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    console.error(`[build] failed: ${what}`);
    process.exit(result.status ?? 1);
  }
}

const deps = spawnSync('bash', [path.join(root, 'scripts', 'ensure-deps.sh')], { cwd: root, stdio: 'inherit' });
if (deps.status !== 0) process.exit(deps.status ?? 1);

rmSync(outDir, { recursive: true, force: true });
step(`compiling src/ to ${path.relative(root, outDir)}/`, process.execPath, [
  path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
  '-p',
  'tsconfig.build.json',
  '--outDir',
  outDir,
]);
// The compiled bundler bundles the compiled workflows (dist/workflows/index.js).
step('bundling the workflow code', process.execPath, [path.join(outDir, 'workers', 'workflow-bundle.js'), path.join(outDir, 'workflow-bundle.js')]);
console.error(`[build] done: ${path.relative(root, outDir)}/`);
