import { z } from 'zod';
import { VM_STATUSES } from '../shared/vm';

export const VM_LIMITS = Object.freeze({ vcpus: 256, memory_mb: 4_194_304, storage_gb: 65_536 });

const wholeNumber = (min: number, max: number) =>
  z.number({ error: 'must be a number' }).int('must be a whole number').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

export const spawnVmSchema = z
  .object({
    vcpus: wholeNumber(1, VM_LIMITS.vcpus),
    memory_mb: wholeNumber(128, VM_LIMITS.memory_mb),
    storage_gb: wholeNumber(1, VM_LIMITS.storage_gb),
    image: z
      .string({ error: 'must be a string' })
      .regex(/^[a-z0-9][a-z0-9._:/@-]{0,199}$/, 'must be an image reference of [a-z0-9._:/@-], at most 200 characters'),
    name: z
      .string({ error: 'must be a string' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 characters of letters, digits, ".", "_" and "-"')
      .nullable()
      .optional(),
  })
  .strict();
export type SpawnVmInput = z.infer<typeof spawnVmSchema>;

export const listVmsQuerySchema = z
  .object({
    status: z.enum(VM_STATUSES).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(50),
    cursor: z.string().max(200).optional(),
    tenant_id: z.string().max(63).optional(),
  })
  .strict();

export const vmIdSchema = z.uuid();

export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 printable ASCII characters');
