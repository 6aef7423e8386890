import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The workflow sources next to this file: index.ts under tsx and ts-jest, index.js in the build output. */
export const WORKFLOWS_PATH = path.resolve(__dirname, `../workflows/index${path.extname(__filename)}`);
/** The workflow interceptors (tracing, gated on a trace to continue: docs/tracing.md): in every bundle, and in workflowModules without one. */
export const WORKFLOW_INTERCEPTOR_MODULES = [path.resolve(__dirname, `../workflows/tracing-interceptors${path.extname(__filename)}`)];
/**
 * Where `npm run build` writes the bundle: the root of the build output (dist/workflow-bundle.js
 * next to dist/workers/). From src/workers (tsx) this is src/workflow-bundle.js, which never
 * exists, so a development worker always bundles the current sources and never a stale build.
 */
export const DEFAULT_BUNDLE_PATH = path.resolve(__dirname, '../workflow-bundle.js');

/** Pre-builds the workflow bundle once, so workers (and test files) start without webpack. */
export async function buildWorkflowBundle(outputPath = DEFAULT_BUNDLE_PATH): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: new DefaultLogger('WARN'),
  });
  await mkdir(path.dirname(outputPath), { recursive: true });
  await writeFile(outputPath, code);
  return outputPath;
}

export function prebuiltBundle(bundlePath = DEFAULT_BUNDLE_PATH): { codePath: string } | undefined {
  return existsSync(bundlePath) ? { codePath: bundlePath } : undefined;
}

if (require.main === module) {
  buildWorkflowBundle(process.argv[2]).then(
    (file) => console.log(`workflow bundle written to ${file}`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
