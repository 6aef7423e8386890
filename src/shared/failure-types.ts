/**
 * ApplicationFailure type names raised by the tenant workflow and its activities. They cross the
 * workflow sandbox and the client boundary as strings, so callers compare `failure.type`, never
 * `instanceof`.
 */
export const FailureType = {
  QuotaExceeded: 'QuotaExceeded',
  TenantClosed: 'TenantClosed',
  TenantHasVms: 'TenantHasVms',
  VmNotFound: 'VmNotFound',
  InFlightLimit: 'InFlightLimit',
  InvalidRequest: 'InvalidRequest',
} as const;
export type FailureType = (typeof FailureType)[keyof typeof FailureType];
