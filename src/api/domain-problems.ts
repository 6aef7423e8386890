import {
  CheckpointNotFoundError,
  DomainError,
  InvalidInputError,
  LedgerAnchorUnavailableError,
  NotAnchoredYetError,
  IdempotencyKeyInFlightError,
  IdempotencyKeyReusedError,
  InFlightLimitError,
  IssuerNotUsableError,
  NotFoundError,
  QuotaExceededError,
  QuotaNotAppliedError,
  TenantExistsError,
  TenantHasVmsError,
  TokenExceedsIssuerError,
  TokenOutsideSubtreeError,
} from '../shared/domain-errors';
import { problems, type ApiError } from './problem';

const NOT_FOUND = { tenant: problems.tenantNotFound, token: problems.tokenNotFound, vm: problems.vmNotFound } as const;

/** The worker's default signing period (LEDGER_CHECKPOINT_EVERY_SECONDS): a checkpoint comes within it. */
const LEDGER_RETRY_AFTER_SECONDS = 10;

/** Seconds a client waits before repeating a PATCH whose quota the workflow has not confirmed. */
const QUOTA_RETRY_AFTER_SECONDS = 5;

/**
 * The problem each domain error answers as: the one place service refusals become HTTP. undefined
 * for an error that is not a domain error (the error middleware answers those).
 */
export function problemOf(error: unknown): ApiError | undefined {
  if (!(error instanceof DomainError)) return undefined;
  if (error instanceof NotFoundError) return NOT_FOUND[error.entity]();
  if (error instanceof TenantExistsError) return problems.tenantExists(error.tenantId);
  if (error instanceof TenantHasVmsError) return problems.tenantHasVms();
  if (error instanceof QuotaExceededError) return problems.quotaExceeded(error.details);
  if (error instanceof InFlightLimitError) return problems.inFlightLimit(error.details);
  if (error instanceof TokenExceedsIssuerError) return problems.tokenExceedsIssuer(error.message);
  if (error instanceof TokenOutsideSubtreeError) return problems.tokenOutsideSubtree();
  if (error instanceof IssuerNotUsableError) return problems.invalidToken();
  if (error instanceof IdempotencyKeyReusedError) return problems.idempotencyKeyReused();
  if (error instanceof IdempotencyKeyInFlightError) return problems.idempotencyKeyInFlight();
  if (error instanceof InvalidInputError) return problems.invalid('Invalid query', [{ field: error.field, message: error.reason }]);
  if (error instanceof NotAnchoredYetError) return problems.notAnchoredYet(error.message, LEDGER_RETRY_AFTER_SECONDS);
  if (error instanceof CheckpointNotFoundError) return problems.checkpointNotFound(error.checkpointId);
  if (error instanceof LedgerAnchorUnavailableError) return problems.dependencyUnavailable(error.message, { retryAfterSeconds: LEDGER_RETRY_AFTER_SECONDS });
  if (error instanceof QuotaNotAppliedError) {
    return problems.dependencyUnavailable(
      `The new quota (version ${error.quotaVersion}) is stored, but the tenant workflow did not confirm it; it applies with the tenant's next VM request at the latest. Repeat the PATCH to confirm.`,
      {
        title: 'Quota stored, not yet applied',
        retryAfterSeconds: QUOTA_RETRY_AFTER_SECONDS,
        extensions: { dependency: 'temporal', quota_version: error.quotaVersion },
      },
    );
  }
  return undefined;
}
