import { patched } from '@temporalio/workflow';
import type { TenantWorkflowInput } from '../../../src/shared/tenant-workflow.state';
import { TENANT_STATE_V2_PATCH } from '../../../src/shared/tenant-workflow.versions';
import { legacyTenantWorkflowV1 } from '../../../src/workflows/legacy/tenant-v1';
import { legacyTenantWorkflowV2 } from '../../../src/workflows/legacy/tenant-v2';

/**
 * The tenant workflow as workers ran it before the admission-v3 patch: new runs record the
 * tenant-state-v2 marker and run the frozen version-2 code. Only for tests that start a run on old code.
 */
export async function tenantWorkflow(input: TenantWorkflowInput): Promise<void> {
  if (!patched(TENANT_STATE_V2_PATCH)) return legacyTenantWorkflowV1(input as Parameters<typeof legacyTenantWorkflowV1>[0]);
  return legacyTenantWorkflowV2(input);
}
