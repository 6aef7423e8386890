export { createVmTenantClient, DEFAULT_TIMEOUT_MS, type VmTenantClient, type VmTenantClientOptions } from './vm-tenant-client';
export type { Middleware } from 'openapi-fetch';
export type { components, operations, paths } from './schema';
export { requestUnchecked, type UncheckedInit } from './unchecked-request';
