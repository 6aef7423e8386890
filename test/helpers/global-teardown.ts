/** Jest global teardown: stops this run's Temporal dev server and drops its database. */
import './global-setup'; // the globalThis declaration

export default async function globalTeardown(): Promise<void> {
  const handles = globalThis.__VM_TENANT_TEST_STACK__;
  globalThis.__VM_TENANT_TEST_STACK__ = undefined;
  await Promise.all([handles?.temporal.stop(), handles?.database.drop()]);
}
