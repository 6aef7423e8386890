import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/logging/logger';
import { startMetricsServer } from '../../src/metrics/metrics-server';

describe('startMetricsServer', () => {
  test('when its port is taken, then it serves nothing, and the warning names the program that logs it, not another', async () => {
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', name: 'vm-tenant-api', destination: { write: (line: string) => void lines.push(line) } });
    try {
      expect(await startMetricsServer(new Registry(), (squatter.address() as AddressInfo).port, '127.0.0.1', log)).toBeNull();
    } finally {
      squatter.close();
    }
    const records = lines.map((line) => JSON.parse(line) as { service: string; msg: string });
    expect(records).toEqual([expect.objectContaining({ service: 'vm-tenant-api', msg: 'metrics endpoint not started' })]);
    expect(records[0]!.msg).not.toMatch(/worker/);
  });
});
