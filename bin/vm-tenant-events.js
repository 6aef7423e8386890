#!/usr/bin/env node
// Runs the TypeScript command through tsx, from wherever the package is installed.
require('tsx/cjs');
require('../src/cli/tail-events.ts');
