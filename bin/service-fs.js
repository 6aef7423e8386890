#!/usr/bin/env node
'use strict';
// The operator CLI: the build output in the image, the TypeScript source in a checkout (bin/entry.js).
require(require('./entry')('cli/service-fs')).main();
