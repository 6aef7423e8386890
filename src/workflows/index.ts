export { tenantWorkflow } from './tenant.workflow';
