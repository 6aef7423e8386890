/** `requested`: recorded, not yet decided by the tenant workflow; `rejected`: refused by it (docs/admission-protocol.md). */
export const VM_STATUSES = ['requested', 'provisioning', 'running', 'destroying', 'destroyed', 'failed', 'rejected'] as const;
export type VmStatus = (typeof VM_STATUSES)[number];

export interface VmShape {
  vcpus: number;
  memory_mb: number;
  storage_gb: number;
  image: string;
  name: string | null;
}

export interface VmRecord extends VmShape {
  vm_id: string;
  tenant_id: string;
  status: VmStatus;
  failure_reason: string | null;
  created_at: string;
  updated_at: string;
}
