import { ApplicationFailure } from '@temporalio/common';
import { findCause } from '../shared/error-causes';
import { FailureType } from '../shared/failure-types';
import type { InFlightLimitDetails, QuotaExceededDetails } from '../shared/tenant-workflow.messages';
import { problems, type ApiError } from './problem';

/**
 * The ApplicationFailure in an error from the Temporal client, found along its `cause` chain
 * (WorkflowUpdateFailedError -> ApplicationFailure). The SDK's failure classes compare by a symbol
 * (SymbolBasedInstanceOfError), so instanceof holds across module copies.
 */
function applicationFailure(error: unknown): ApplicationFailure | undefined {
  return findCause(error, (candidate) => candidate instanceof ApplicationFailure);
}

export function failureType(error: unknown): string | undefined {
  return applicationFailure(error)?.type ?? undefined;
}

export function failureDetails<T>(error: unknown): T | undefined {
  return applicationFailure(error)?.details?.[0] as T | undefined;
}

/**
 * The problem a tenant-workflow refusal answers as, or undefined for an error that is not one
 * (the error middleware answers those). The one place workflow failures become API errors.
 */
export function refusalProblem(error: unknown): ApiError | undefined {
  switch (failureType(error)) {
    case FailureType.QuotaExceeded:
      return problems.quotaExceeded(failureDetails<QuotaExceededDetails>(error));
    case FailureType.InFlightLimit:
      return problems.inFlightLimit(failureDetails<InFlightLimitDetails>(error));
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
