import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeExit, type ManagedChild } from './child-process';

/**
 * The one readiness wait of every launcher: polls `probe` until it answers true, failing early
 * with the child's last lines when the child exits, and after `timeoutMs` when it never gets ready.
 */
export async function waitUntilReady(child: ManagedChild, probe: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const tail = () => child.recentOutput().slice(-40).join('\n');
  for (;;) {
    if (child.hasExited()) throw new Error(`${what} ${describeExit(await child.exited)} while starting:\n${tail()}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not become ready within ${timeoutMs / 1000} s:\n${tail()}`);
    await sleep(100);
  }
}

/** A probe that is true once `url` answers 2xx. */
export function answersOk(url: string): () => Promise<boolean> {
  return async () => (await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok;
}

/** A probe that is true once something accepts TCP connections on 127.0.0.1:`port`. */
export function acceptsTcp(port: number): () => Promise<boolean> {
  return () =>
    new Promise((resolve) => {
      const socket = net
        .connect({ host: '127.0.0.1', port }, () => {
          socket.destroy();
          resolve(true);
        })
        .once('error', () => resolve(false));
    });
}
