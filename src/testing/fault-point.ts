import { closeSync, openSync } from 'node:fs';
/**
 * Test-only fault points: a named step at which a test can stop this process for certain, so a
 * kill lands in one window of a protocol every time instead of at a lucky moment.
 *
 * `VM_TENANT_FAULT_POINT=<name>[@<hit>][:kill|:stop]` makes the process SIGKILL (default) or
 * SIGSTOP itself the <hit>-th time (default 1) it reaches `faultPoint(<name>)`. With
 * `VM_TENANT_FAULT_POINT_LATCH=<file>`, only the first of several processes sharing that file fires
 * (it creates the file): a test arms every replica and the one the work reaches first stops. Unset
 * (as in every deployment), a fault point is one environment lookup. Names: docs/admission-protocol.md.
 */
export type FaultPointName =
  | 'api.spawn.after-request-recorded'
  | 'api.spawn.after-decision'
  | 'api.destroy.after-request-recorded'
  | 'worker.boot.after-confirm'
  | 'worker.boot.after-fleet-create'
  | 'worker.teardown.after-fleet-destroy';

let hits = 0;

function takeLatch(file: string): boolean {
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    return false;
  }
}

export function faultPoint(name: FaultPointName, env: NodeJS.ProcessEnv = process.env): void {
  const spec = env.VM_TENANT_FAULT_POINT;
  if (!spec) return;
  const match = /^([a-z.-]+)(?:@(\d+))?(?::(kill|stop))?$/.exec(spec);
  if (!match || match[1] !== name) return;
  hits += 1;
  if (hits !== Number(match[2] ?? 1)) return;
  if (env.VM_TENANT_FAULT_POINT_LATCH && !takeLatch(env.VM_TENANT_FAULT_POINT_LATCH)) return;
  process.stderr.write(`fault point ${name} reached (hit ${hits}): ${match[3] ?? 'kill'}\n`);
  process.kill(process.pid, match[3] === 'stop' ? 'SIGSTOP' : 'SIGKILL');
}
