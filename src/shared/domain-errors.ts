import type { InFlightLimitDetails, QuotaExceededDetails } from './tenant-workflow.messages';

/**
 * What a service refuses, in the service's own words: each class is one rule that said no. The
 * services throw them and know nothing of HTTP; the API answers each with one problem, in one place
 * (src/api/domain-problems.ts). Pure, so workflow-side code may name them too.
 */
export abstract class DomainError extends Error {}

/** The named tenant, token or VM does not exist (or is not the caller's to see: the same answer). */
export class NotFoundError extends DomainError {
  override readonly name = 'NotFoundError';
  constructor(readonly entity: 'tenant' | 'token' | 'vm') {
    super(`no such ${entity}`);
  }
}

export class TenantExistsError extends DomainError {
  override readonly name = 'TenantExistsError';
  constructor(readonly tenantId: string) {
    super(`tenant id ${tenantId} is taken`);
  }
}

export class TenantHasVmsError extends DomainError {
  override readonly name = 'TenantHasVmsError';
  override readonly message = 'the tenant still has VMs';
}

export class QuotaExceededError extends DomainError {
  override readonly name = 'QuotaExceededError';
  constructor(readonly details: QuotaExceededDetails | undefined) {
    super('the spawn would exceed the tenant quota');
  }
}

export class InFlightLimitError extends DomainError {
  override readonly name = 'InFlightLimitError';
  constructor(readonly details: InFlightLimitDetails | undefined) {
    super('too many VMs of the tenant are in flight');
  }
}

/** The stored quota is newer than the one the tenant workflow confirmed holding. */
export class QuotaNotAppliedError extends DomainError {
  override readonly name = 'QuotaNotAppliedError';
  constructor(
    readonly quotaVersion: number,
    options?: ErrorOptions,
  ) {
    super(`quota version ${quotaVersion} is stored but not yet applied by the tenant workflow`, options);
  }
}

/** A token may issue only what it could do itself; the message says which rule it broke. */
export class TokenExceedsIssuerError extends DomainError {
  override readonly name = 'TokenExceedsIssuerError';
}

/** A tenant token may revoke itself and the tokens issued under it, never its issuer or a sibling. */
export class TokenOutsideSubtreeError extends DomainError {
  override readonly name = 'TokenOutsideSubtreeError';
  override readonly message = "the token is outside the caller's subtree";
}

/** The caller's token was revoked or expired after it authenticated this request. */
export class IssuerNotUsableError extends DomainError {
  override readonly name = 'IssuerNotUsableError';
  override readonly message = 'the issuing token is no longer usable';
}

/** The Idempotency-Key was used for another request. */
export class IdempotencyKeyReusedError extends DomainError {
  override readonly name = 'IdempotencyKeyReusedError';
  override readonly message = 'the idempotency key was used for a different request';
}

/** A request with the Idempotency-Key is still being processed. */
export class IdempotencyKeyInFlightError extends DomainError {
  override readonly name = 'IdempotencyKeyInFlightError';
  override readonly message = 'a request with this idempotency key is in flight';
}

/** A query value the service cannot use (a cursor from elsewhere): `field` names it. */
export class InvalidInputError extends DomainError {
  override readonly name = 'InvalidInputError';
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field} ${reason}`);
  }
}

/** What was asked for is not under a signed ledger checkpoint yet: nothing is down, it comes within a signing period. */
export class NotAnchoredYetError extends DomainError {
  override readonly name = 'NotAnchoredYetError';
}

/** No checkpoint of the ledger's series has this id (its link hash). */
export class CheckpointNotFoundError extends DomainError {
  override readonly name = 'CheckpointNotFoundError';
  constructor(readonly checkpointId: string) {
    super(`no checkpoint of the series has id ${checkpointId}`);
  }
}

/** The checkpoint stream cannot be read, or the ledger no longer gives a signed root: a 503, the signer alerts the operator. */
export class LedgerAnchorUnavailableError extends DomainError {
  override readonly name = 'LedgerAnchorUnavailableError';
}
