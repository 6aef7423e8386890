import type { Migration } from 'kysely';
import * as tenantsTokensLedger from './2026_11_23_0001_tenants_tokens_ledger';
import * as vmsIdempotency from './2026_11_23_0002_vms_idempotency';
import * as apiRateLimits from './2026_11_23_0003_api_rate_limits';
import * as quotaVersion from './2026_11_27_0004_quota_version';
import * as ledgerChainInDatabase from './2026_11_27_0005_ledger_chain_in_database';
import * as ledgerTenantChains from './2026_11_27_0006_ledger_tenant_chains';
import * as ledgerTenantLocks from './2026_11_27_0007_ledger_tenant_locks';
import * as tokenKeyBinding from './2026_11_27_0008_token_key_binding';
import * as eventRelayFencing from './2026_11_28_0009_event_relay_fencing';
import * as vmAdmission from './2026_12_06_0010_vm_admission';
import * as tokenRevocationNotify from './2026_12_06_0011_token_revocation_notify';
import * as auditEventTraces from './2026_12_06_0012_audit_event_traces';
import * as tokenChangeGeneration from './2026_12_06_0013_token_change_generation';
import * as relayWokenInProcess from './2026_12_06_0014_relay_woken_in_process';

/** Listed statically so the same code migrates from ts sources, compiled output and tests. */
export const migrations: Record<string, Migration> = {
  '2026_11_23_0001_tenants_tokens_ledger': tenantsTokensLedger,
  '2026_11_23_0002_vms_idempotency': vmsIdempotency,
  '2026_11_23_0003_api_rate_limits': apiRateLimits,
  '2026_11_27_0004_quota_version': quotaVersion,
  '2026_11_27_0005_ledger_chain_in_database': ledgerChainInDatabase,
  '2026_11_27_0006_ledger_tenant_chains': ledgerTenantChains,
  '2026_11_27_0007_ledger_tenant_locks': ledgerTenantLocks,
  '2026_11_27_0008_token_key_binding': tokenKeyBinding,
  '2026_11_28_0009_event_relay_fencing': eventRelayFencing,
  '2026_12_06_0010_vm_admission': vmAdmission,
  '2026_12_06_0011_token_revocation_notify': tokenRevocationNotify,
  '2026_12_06_0012_audit_event_traces': auditEventTraces,
  '2026_12_06_0013_token_change_generation': tokenChangeGeneration,
  '2026_12_06_0014_relay_woken_in_process': relayWokenInProcess,
};
