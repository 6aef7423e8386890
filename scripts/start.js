#!/usr/bin/env node
// `npm start`: installs npm dependencies when node_modules is missing, then runs the
// local stack (src/cli/start-stack.ts). Plain JavaScript because tsx may not be
// installed yet when this starts.
'use strict';
const { spawn, spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const deps = spawnSync('bash', [path.join(root, 'scripts', 'ensure-deps.sh')], { cwd: root, stdio: 'inherit' });
if (deps.status !== 0) process.exit(deps.status ?? 1);

const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli', 'start-stack.ts'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
// start-stack treats a repeated signal as the same request, so forwarding a Ctrl-C it
// also received from the terminal is harmless.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
// When whoever started us goes away without a signal reaching us (e.g. `npm start` run
// without `exec`: npm forwards SIGTERM to its `sh -c`, which dies and orphans us), stop.
const parent = process.ppid;
const watchdog = setInterval(() => {
  if (process.ppid !== parent) child.kill('SIGTERM');
}, 1_000);
watchdog.unref();
child.on('exit', (code, signal) => {
  process.exit(code ?? 128 + (os.constants.signals[signal] ?? 1));
});
