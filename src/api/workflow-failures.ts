import { FailureType } from '../shared/failure-types';
import type { InFlightLimitDetails, QuotaExceededDetails } from '../shared/tenant-workflow.messages';
import { ApiError, problems } from './problem';

/**
 * Finds the ApplicationFailure type in an error from the Temporal client, walking the `cause`
 * chain (WorkflowUpdateFailedError -> ApplicationFailure). Compared by name, never instanceof:
 * failures cross the sandbox and client boundary.
 */
export function failureType(error: unknown): string | undefined {
  return applicationFailure(error)?.type;
}

export function failureDetails<T>(error: unknown): T | undefined {
  return applicationFailure(error)?.details?.[0] as T | undefined;
}

interface ApplicationFailureLike {
  name: string;
  type?: string;
  details?: unknown[];
  cause?: unknown;
}

function applicationFailure(error: unknown): ApplicationFailureLike | undefined {
  let current = error as ApplicationFailureLike | undefined;
  for (let depth = 0; current && depth < 8; depth++) {
    if (current.name === 'ApplicationFailure') return current;
    current = current.cause as ApplicationFailureLike | undefined;
  }
  return undefined;
}

/**
 * The problem a tenant-workflow refusal answers as, or undefined for an error that is not one
 * (the error middleware answers those). The one place workflow failures become API errors.
 */
export function refusalProblem(error: unknown): ApiError | undefined {
  switch (failureType(error)) {
    case FailureType.QuotaExceeded: {
      const details = failureDetails<QuotaExceededDetails>(error);
      return new ApiError(
        429,
        'quota_exceeded',
        'Quota exceeded',
        details
          ? `The spawn would exceed the tenant's ${details.limit} quota (limit ${details.limit_value}, in use ${details.in_use}, requested ${details.requested}).`
          : 'The spawn would exceed the tenant quota.',
        { ...details },
      );
    }
    case FailureType.InFlightLimit: {
      const details = failureDetails<InFlightLimitDetails>(error);
      return new ApiError(
        429,
        'in_flight_limit',
        'Too many VMs in flight',
        `The tenant has ${details?.in_flight ?? 'too many'} VMs being spawned or destroyed (limit ${details?.limit ?? 'reached'}); retry when some have settled.`,
        { ...details },
        { 'Retry-After': '5' },
      );
    }
    case FailureType.TenantClosed:
      return problems.tenantNotFound();
    case FailureType.VmNotFound:
      return problems.vmNotFound();
    case FailureType.TenantHasVms:
      return problems.tenantHasVms();
    default:
      return undefined;
  }
}
