#!/usr/bin/env node
'use strict';
// Runs the TypeScript CLI through tsx, so no build step is needed. __dirname is the real location
// of this file (Node resolves the symlinks npm link and npx create), so the paths hold from any cwd.
const path = require('node:path');

require('tsx/cjs');
require(path.join(__dirname, '..', 'src', 'cli', 'service-fs.ts')).main();
