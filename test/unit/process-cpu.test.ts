import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { measureCpu, treeOf } from '../../bench/process-cpu';

describe('CPU per process group from /proc (the benchmark cost)', () => {
  test('when a process of the group burns CPU and exits before the phase ends, then its CPU is still counted', async () => {
    // Busy for 400 ms of wall time, then gone: like a Postgres backend its pool closes as idle.
    const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 400; while (Date.now() < end);'], { stdio: 'ignore' });
    const { cpu } = await measureCpu(
      { child: treeOf(child.pid) },
      async () => {
        await once(child, 'exit');
        await sleep(300);
      },
      50,
    );
    expect(cpu.ms.child).toBeGreaterThanOrEqual(200);
  });
});
