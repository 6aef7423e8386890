import { z } from 'zod';
import { SCOPES } from '../shared/scopes';
import { normaliseEd25519PublicKey } from './subject-pubkey';

export const TOKEN_LIFETIME = Object.freeze({ min_seconds: 60, max_seconds: 31_536_000, default_seconds: 86_400 });

/** Scopes a tenant token may carry; service:admin is platform-wide and never issued to a tenant. */
export const TENANT_SCOPES = SCOPES.filter((scope) => scope !== 'service:admin');

/** The forms normaliseEd25519PublicKey accepts, for the OpenAPI document (any 32 bytes are a valid key). */
const KEY_BASE64 = '[A-Za-z0-9+/_-]{42}[AEIMQUYcgkosw048]=?';
const SUBJECT_PUBKEY_FORMATS = [
  { title: 'raw base64 (32 bytes)', pattern: `^${KEY_BASE64}$` },
  { title: 'OpenSSH', pattern: '^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-P][A-Za-z0-9+/]{42}( [ -~]{0,100})?$' },
  { title: 'PEM (SPKI)', pattern: '^-----BEGIN PUBLIC KEY-----\\nMCowBQYDK2VwAyEA[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\\n-----END PUBLIC KEY-----\\n?$' },
];

export const issueTokenSchema = z
  .object({
    subject_pubkey: z
      .string({ error: 'must be a string' })
      .transform((value, ctx) => {
        const normalised = normaliseEd25519PublicKey(value);
        if (normalised === null) {
          ctx.addIssue({ code: 'custom', message: 'must be an Ed25519 public key (raw base64, PEM or "ssh-ed25519 ...")' });
          return z.NEVER;
        }
        return normalised;
      })
      .meta({ description: "The Ed25519 public key of the token's holder", anyOf: SUBJECT_PUBKEY_FORMATS }),
    key_binding: z
      .enum(['none', 'required'], { error: 'must be "none" or "required"' })
      .optional()
      .describe(
        '"required": the token works only on requests signed (RFC 9421) with the private key of subject_pubkey. Default: "required" when the issuing token is bound, else "none".',
      ),
    scope: z.enum(TENANT_SCOPES as [string, ...string[]], { error: `must be one of ${TENANT_SCOPES.join(', ')}` }),
    expires_in_seconds: z
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(TOKEN_LIFETIME.min_seconds, `must be at least ${TOKEN_LIFETIME.min_seconds}`)
      .max(TOKEN_LIFETIME.max_seconds, `must be at most ${TOKEN_LIFETIME.max_seconds}`)
      .default(TOKEN_LIFETIME.default_seconds),
  })
  .strict();
export type IssueTokenInput = z.infer<typeof issueTokenSchema>;

/** A token id as issued (newTokenId): anything else names no token. */
export const tokenIdSchema = z.string().regex(/^tok_[A-Za-z0-9_]{1,64}$/);
