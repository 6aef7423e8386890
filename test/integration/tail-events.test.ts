import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const run = promisify(execFile);
const BIN = path.resolve(__dirname, '../../bin/vm-tenant-events.js');

describe('vm-tenant-events: tail one tenant', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  test("when two tenants have events, then the command prints only the named tenant's, as JSON lines", async () => {
    const mine = await createTenant(stack);
    const other = await createTenant(stack);
    const vm = await stack.request('POST', '/v1/vms', { token: mine.token, body: SMALL_VM });
    await stack.request('POST', '/v1/vms', { token: other.token, body: SMALL_VM });
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vm.body.vm_id}`, { token: mine.token })).body.status === 'running');

    const env = {
      PATH: process.env.PATH,
      NATS_URL: stack.config.natsUrl,
      NATS_STREAM: stack.config.natsStream,
      NATS_SUBJECT_PREFIX: stack.config.natsSubjectPrefix,
    };
    const lines = await eventually(
      async () => {
        const { stdout } = await run(BIN, ['--tenant', mine.tenantId, '--from-start', '--no-follow'], { env, timeout: 30_000 });
        const events = stdout
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line));
        return events.some((e) => e.event_type === 'VM_RUNNING') ? events : undefined;
      },
      40_000,
      'VM_RUNNING in the tail',
    );
    expect(lines.every((e: { tenant_id: string }) => e.tenant_id === mine.tenantId)).toBe(true);
    expect(lines.map((e: { event_type: string }) => e.event_type)).toEqual(expect.arrayContaining(['TENANT_CREATED', 'VM_SPAWN_REQUESTED', 'VM_RUNNING']));
  });

  test('when the tenant id is not valid, then it exits 2 with usage', async () => {
    await expect(run(BIN, ['--tenant', 'NOT VALID'], { env: { PATH: process.env.PATH } })).rejects.toMatchObject({ code: 2 });
  });
});
