import { ApplicationFailure } from '@temporalio/common';
import { InFlightLimitError, NotFoundError, QuotaExceededError, TenantHasVmsError, type DomainError } from './domain-errors';
import { findCause } from './error-causes';
import { FailureType } from './failure-types';
import type { InFlightLimitDetails, QuotaExceededDetails } from './tenant-workflow.messages';

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
 * The domain error a tenant-workflow refusal is, or undefined for an error that is not one (a
 * dependency failing, a bug). The one place workflow failures become domain errors.
 */
export function workflowRefusal(error: unknown): DomainError | undefined {
  switch (failureType(error)) {
    case FailureType.QuotaExceeded:
      return new QuotaExceededError(failureDetails<QuotaExceededDetails>(error));
    case FailureType.InFlightLimit:
      return new InFlightLimitError(failureDetails<InFlightLimitDetails>(error));
    case FailureType.TenantClosed:
      return new NotFoundError('tenant');
    case FailureType.VmNotFound:
      return new NotFoundError('vm');
    case FailureType.TenantHasVms:
      return new TenantHasVmsError();
    default:
      return undefined;
  }
}
