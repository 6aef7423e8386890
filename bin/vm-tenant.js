#!/usr/bin/env node
'use strict';
// The API's command-line client: the build output in the image, the TypeScript source in a checkout (bin/entry.js).
require(require('./entry')('cli/vm-tenant/main'))
  .main(process.argv.slice(2), process.env)
  .then((code) => {
    process.exitCode = code;
  });
