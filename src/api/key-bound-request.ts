import type { Request } from 'express';
import type { Kysely } from 'kysely';
import { recordSignatureOnce } from '../auth/seen-signature.repository';
import { SIGNATURE_CLOCK_SKEW_SECONDS } from '../auth/request-signature-profile';
import { verifyRequestSignature, type SignatureRefusal } from '../auth/request-signature-verifier';
import type { Database } from '../db/tables';
import { problems, type ApiError } from './problem';
import './request-types';

export interface RequestSignatureSettings {
  /** A signature older than this is refused; seen signatures are kept this long to refuse replays. */
  maxAgeSeconds: number;
}

const REFUSALS: Record<SignatureRefusal, (detail: string) => ApiError> = {
  missing: problems.signatureRequired,
  malformed: problems.signatureMalformed,
  key_mismatch: problems.signatureKeyMismatch,
  invalid: problems.signatureInvalid,
  expired: problems.signatureExpired,
  digest_mismatch: problems.contentDigestMismatch,
};

/**
 * The URI the client addressed. Behind a trusted proxy, scheme and host come from its
 * X-Forwarded-Proto/-Host (Express's `trust proxy`), as they do for the audited client address.
 */
function targetUri(req: Request): string {
  return `${req.protocol}://${req.host}${req.originalUrl}`;
}

/**
 * Checks the request of a token bound to `subjectPubkey`; null when it may proceed, else the 401.
 * The signature is recorded only once it verified, so garbage cannot fill the table.
 */
export async function refusalOfKeyBoundRequest(
  db: Kysely<Database>,
  req: Request,
  subjectPubkey: string,
  settings: RequestSignatureSettings,
  now: Date,
): Promise<ApiError | null> {
  const verdict = await verifyRequestSignature(
    { method: req.method, targetUri: targetUri(req), headers: req.headers, body: req.rawBody ?? Buffer.alloc(0) },
    subjectPubkey,
    { maxAgeSeconds: settings.maxAgeSeconds, now },
  );
  if (!verdict.ok) return REFUSALS[verdict.refusal](verdict.reason);
  // Kept until the signature is too old to pass the age check on any API process whose clock is
  // within the allowed skew; past that, age alone refuses it.
  const expiresAt = new Date(verdict.created.getTime() + (settings.maxAgeSeconds + 1 + SIGNATURE_CLOCK_SKEW_SECONDS) * 1000);
  if (!(await recordSignatureOnce(db, verdict.signature, expiresAt))) return problems.signatureReplayed();
  return null;
}
