import { existsSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildWorkflowBundle } from '../../src/workers/workflow-bundle';
import { testEnv } from './test-env';

/**
 * The workflow bundle for this test run, built once (by the first test file that needs it) and
 * reused by the others, so each file does not pay for a webpack build.
 */
export async function testBundle(): Promise<{ codePath: string }> {
  const codePath = path.join(os.tmpdir(), `vm-tenant-workflow-bundle-${testEnv().testRunId}.js`);
  if (!existsSync(codePath)) {
    const temp = `${codePath}.${process.pid}.tmp`;
    await buildWorkflowBundle(temp);
    await rename(temp, codePath);
  }
  return { codePath };
}
