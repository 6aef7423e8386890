#!/usr/bin/env node
'use strict';
// Runs the TypeScript CLI through tsx, so no build step is needed (as bin/service-fs.js does).
const path = require('node:path');

require('tsx/cjs');
require(path.join(__dirname, '..', 'src', 'cli', 'vm-tenant', 'main.ts'))
  .main(process.argv.slice(2), process.env)
  .then((code) => {
    process.exitCode = code;
  });
