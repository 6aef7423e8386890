#!/usr/bin/env node
'use strict';
// Follows the event stream: the build output in the image, the TypeScript source in a checkout (bin/entry.js).
require(require('./entry')('cli/tail-events'));
