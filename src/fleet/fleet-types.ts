import { z } from 'zod';

/**
 * The wire format of the fleet controller API (docs/fleet-api.md). Both sides use these schemas:
 * the simulator to validate what it receives, the client to validate what it is answered.
 */

export const FLEET_VM_STATUSES = ['booting', 'running', 'failed', 'destroyed'] as const;
export type FleetVmStatus = (typeof FLEET_VM_STATUSES)[number];

/**
 * Refusals of a spawn that retrying the same request cannot fix. `vm_tombstoned`: the id was
 * destroyed (or its destroy came before its create), so it can never be created.
 */
export const FLEET_REJECTION_CODES = ['no_capacity', 'image_refused', 'vm_tombstoned', 'invalid_request'] as const;
export type FleetRejectionCode = (typeof FLEET_REJECTION_CODES)[number];

export const FleetSpawnRequestSchema = z.strictObject({
  /** The vm id chosen by vm-tenant; also the idempotency key of the spawn. */
  request_id: z.uuid(),
  tenant_id: z.string().min(1).max(128),
  vcpus: z.int().min(1).max(1024),
  memory_mb: z
    .int()
    .min(1)
    .max(16 * 1024 * 1024),
  storage_gb: z
    .int()
    .min(1)
    .max(1024 * 1024),
  image: z.string().min(1).max(256),
});
export type FleetSpawnRequest = z.infer<typeof FleetSpawnRequestSchema>;

export const FleetVmSchema = z.object({
  vm_id: z.string(),
  tenant_id: z.string(),
  host_id: z.string(),
  status: z.enum(FLEET_VM_STATUSES),
  failure_reason: z.string().nullable(),
  vcpus: z.number(),
  memory_mb: z.number(),
  storage_gb: z.number(),
  image: z.string(),
  created_at: z.string(),
  ready_at: z.string().nullable(),
});
export type FleetVm = z.infer<typeof FleetVmSchema>;

export const FleetVmListSchema = z.object({ items: z.array(FleetVmSchema) });
