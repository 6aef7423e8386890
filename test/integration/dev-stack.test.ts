/**
 * The stack launcher every launcher shares (src/devstack/stack.ts): what `npm start` relies on to
 * leave no process behind and to notice a part that dies. A real Temporal dev server and a real
 * fleet simulator; nothing else of this run's services is touched.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildExit } from '../../src/devstack/child-process';
import { getFreePort } from '../../src/devstack/free-port';
import { DevStack, StackStoppedError } from '../../src/devstack/stack';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-devstack-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Processes whose command line names this test's directory (each part is started with a file in it). */
function processesIn(directory: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', directory]).toString().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when none matches
  }
}

async function fleetOnly(onUnexpectedExit?: (name: string, exit: ChildExit) => void): Promise<DevStack> {
  const fleetPort = await getFreePort();
  return new DevStack({
    env: { PATH: process.env.PATH, FLEET_PORT: String(fleetPort), FLEET_STATE_FILE: path.join(dir, 'fleet-state.json') },
    temporal: { headless: true, dbFilename: path.join(dir, 'temporal.db'), onLine: () => undefined },
    services: [{ kind: 'fleet', onLine: () => undefined }],
    onUnexpectedExit,
  });
}

test('when the stack is stopped while its Temporal dev server is still starting, then start fails as stopped and no process is left', async () => {
  const stack = await fleetOnly();
  const starting = stack.start();
  // The dev server is spawned, not ready yet: ensureTemporalBinary is quick once installed.
  const deadline = Date.now() + 30_000;
  while (processesIn(dir).length === 0 && Date.now() < deadline) await sleep(20);
  expect(processesIn(dir).length).toBeGreaterThan(0);
  // npm start exits as soon as stop() resolves: nothing may still run then.
  await stack.stop();
  expect(processesIn(dir)).toEqual([]);
  await expect(starting).rejects.toBeInstanceOf(StackStoppedError);
}, 60_000);

test('when a part dies on its own, then the launcher hears of it; when it is stopped, then it does not', async () => {
  const exits: string[] = [];
  const stack = await fleetOnly((name, exit) => exits.push(`${name} ${exit.signal ?? exit.code}`));
  await stack.start();
  expect((await fetch(`${stack.service('fleet').url}/healthz`)).ok).toBe(true);

  await stack.service('fleet').kill();
  await sleep(100);
  expect(exits).toEqual(['fleet SIGKILL']);

  await stack.stop();
  await sleep(100);
  expect(exits).toEqual(['fleet SIGKILL']);
  expect(processesIn(dir)).toEqual([]);
}, 90_000);
