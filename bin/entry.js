'use strict';
// Which file a bin script runs. An install without the sources beside bin/ (the image, which holds
// dist/ only; a packed package) runs the build output on plain node. A checkout runs the TypeScript
// source through tsx, so a dist/ left from an earlier `npm run build` never runs stale code there.
// __dirname is the real location of this file (Node resolves the symlinks npm link and npx create).
const { existsSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** `relative` is the module's path under src/ (and dist/) without its extension, e.g. 'cli/service-fs'. */
module.exports = function entry(relative) {
  const compiled = path.join(root, 'dist', `${relative}.js`);
  if (!existsSync(path.join(root, 'src')) && existsSync(compiled)) return compiled;
  require('tsx/cjs');
  return path.join(root, 'src', `${relative}.ts`);
};
