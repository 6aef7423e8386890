import { z } from 'zod';
import { TENANT_ID_PATTERN } from '../shared/tenant-id';

export const TENANT_LIMITS = Object.freeze({
  max_vms: 100_000,
  storage_quota_gb: 1_000_000,
  api_rate_limit_rpm: 100_000,
  display_name_length: 200,
});

const positiveInt = (max: number) =>
  z.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`);

// Printable text only: no control characters, which would break logs, tables and terminals.
const displayName = z
  .string({ error: 'must be a string' })
  .trim()
  .min(1, 'must not be empty')
  .max(TENANT_LIMITS.display_name_length, `must be at most ${TENANT_LIMITS.display_name_length} characters`)
  .refine((value) => !/[\p{Cc}\p{Cs}]/u.test(value), 'must not contain control characters');

export const tenantIdSchema = z
  .string({ error: 'must be a string' })
  .regex(TENANT_ID_PATTERN, 'must be 3-63 characters of a-z, 0-9 and "-", start with a letter and not end with "-"');

export const createTenantSchema = z
  .object({
    tenant_id: tenantIdSchema,
    display_name: displayName,
    max_vms: positiveInt(TENANT_LIMITS.max_vms),
    storage_quota_gb: positiveInt(TENANT_LIMITS.storage_quota_gb),
    api_rate_limit_rpm: positiveInt(TENANT_LIMITS.api_rate_limit_rpm),
  })
  .strict();
export type CreateTenantInput = z.infer<typeof createTenantSchema>;

export const updateTenantSchema = z
  .object({
    display_name: displayName.optional(),
    max_vms: positiveInt(TENANT_LIMITS.max_vms).optional(),
    storage_quota_gb: positiveInt(TENANT_LIMITS.storage_quota_gb).optional(),
    api_rate_limit_rpm: positiveInt(TENANT_LIMITS.api_rate_limit_rpm).optional(),
  })
  .strict()
  .refine((value) => Object.keys(value).length > 0, 'must change at least one field');
export type UpdateTenantInput = z.infer<typeof updateTenantSchema>;

export const pageQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(100).default(50),
    // Cursors are tenant or token ids; anything else (a NUL byte, which Postgres text cannot hold) is refused.
    cursor: z
      .string()
      .max(200)
      .regex(/^[A-Za-z0-9_-]+$/, 'is not a cursor from this API')
      .optional(),
  })
  .strict();
