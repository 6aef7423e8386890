/**
 * The tenant workflow as workers ran it before the tenant-state-v2 patch (no patch marker at all):
 * the frozen version-1 code under the workflow's name. Only for tests that start a run on old code.
 */
export { legacyTenantWorkflowV1 as tenantWorkflow } from '../../../src/workflows/legacy/tenant-v1';
