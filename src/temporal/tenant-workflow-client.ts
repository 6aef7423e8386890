import { WithStartWorkflowOperation, type Client, type WorkflowStartOptions } from '@temporalio/client';
import { ApplicationFailure, type UpdateDefinition } from '@temporalio/common';
import { FailureType } from '../shared/failure-types';
import type { RequestContext } from '../shared/request-context';
import { tenantWorkflowId } from '../shared/tenant-id';
import {
  changeQuotaUpdate,
  closeTenantUpdate,
  destroyVmUpdate,
  spawnUpdateId,
  spawnVmUpdate,
  type SpawnVmRequest,
  type VersionedQuota,
} from '../shared/tenant-workflow.messages';
import type { TenantLimits } from '../shared/tenant-workflow.state';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import type { tenantWorkflow } from '../workflows';
import { withCallDeadline } from './call-deadline';
import { KeyedLimiter } from './keyed-limiter';
import { retryWhileExhausted } from './retry-exhausted';
import { searchAttributeRegistration, TENANT_ID_SEARCH_ATTRIBUTE } from './search-attributes';

export interface TenantWorkflowClientOptions {
  client: Client;
  taskQueue: string;
  /** Passed to new workflow runs; lowered in tests to exercise continue-as-new. */
  continueAsNewAfterUpdates?: number;
  /** In-flight updates per tenant from this process; Temporal allows 10 per workflow in total. */
  maxInFlightPerTenant?: number;
  /** Passed to new workflow runs (VMs in flight per tenant, boot deadline). */
  limits?: Partial<TenantLimits>;
  /** Deadline of every call, queueing and retries included (TEMPORAL_CALL_TIMEOUT_MS). */
  callTimeoutMs?: number;
}

/**
 * A closed tenant's workflow completed, and its id may not be reused (ALLOW_DUPLICATE_FAILED_ONLY):
 * a late request for a deleted tenant is refused instead of starting a new run. A run that failed
 * or was terminated may be restarted, and rebuilds from Postgres.
 */
function closedTenantFailure(error: unknown, tenantId: string): unknown {
  if ((error as Error | undefined)?.name !== 'WorkflowExecutionAlreadyStartedError') return error;
  return ApplicationFailure.create({ type: FailureType.TenantClosed, message: `tenant ${tenantId} is closed`, nonRetryable: true, cause: error as Error });
}

/** The tenant workflows as the API sees them: every call reaches the running workflow or starts it. */
export function createTenantWorkflowClient(options: TenantWorkflowClientOptions): TenantWorkflowGateway {
  const { client, taskQueue } = options;
  const limiter = new KeyedLimiter(options.maxInFlightPerTenant ?? 8);
  const timeoutMs = options.callTimeoutMs ?? 10_000;
  // Every path below may start the workflow: the first waits for TenantId to be visible on the namespace.
  const searchAttributes = searchAttributeRegistration(client);

  const startOptions = (tenantId: string): WorkflowStartOptions<typeof tenantWorkflow> & { workflowIdConflictPolicy: 'USE_EXISTING' } => ({
    workflowId: tenantWorkflowId(tenantId),
    taskQueue,
    args: [{ tenant_id: tenantId, continue_as_new_after_updates: options.continueAsNewAfterUpdates, limits: options.limits }],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
    typedSearchAttributes: [{ key: TENANT_ID_SEARCH_ATTRIBUTE, value: tenantId }],
    memo: { tenant_id: tenantId },
    staticSummary: `Tenant ${tenantId}: VM spawn/destroy serialisation and quota`,
    staticDetails: `Owner tenant: ${tenantId}. Query \`usage\` or see Current details for VMs and storage in use.`,
  });

  // Update-with-start: reaches the running workflow, or starts it (e.g. after an operator terminated it).
  // The deadline covers the wait for a per-tenant slot, the refusals retried for load and the wait
  // for the update's result.
  const update = <Ret, Args extends unknown[]>(tenantId: string, definition: UpdateDefinition<Ret, Args>, args: Args, updateId?: string): Promise<Ret> =>
    withCallDeadline(client, `update ${definition.name}`, timeoutMs, async (deadline) => {
      await searchAttributes.ready(deadline);
      return limiter.run(tenantId, () =>
        retryWhileExhausted(
          () =>
            client.workflow.executeUpdateWithStart(definition, {
              args,
              updateId,
              startWorkflowOperation: new WithStartWorkflowOperation<typeof tenantWorkflow>('tenantWorkflow', startOptions(tenantId)),
            }),
          deadline,
        ),
      );
    }).catch((error: unknown) => {
      throw closedTenantFailure(error, tenantId);
    });

  return {
    async ensureStarted(tenantId) {
      await withCallDeadline(client, 'workflow start', timeoutMs, async (deadline) => {
        await searchAttributes.ready(deadline);
        return client.workflow.start<typeof tenantWorkflow>('tenantWorkflow', startOptions(tenantId));
      });
    },
    changeQuota(tenantId, quota: VersionedQuota, context: RequestContext) {
      const { max_vms, storage_quota_gb, version } = quota;
      return update(tenantId, changeQuotaUpdate, [{ quota: { max_vms, storage_quota_gb, version }, context }], `quota-${tenantId}-${version}`);
    },
    async close(tenantId, context) {
      await update(tenantId, closeTenantUpdate, [{ context }]);
    },
    spawn(tenantId, request: SpawnVmRequest) {
      return update(tenantId, spawnVmUpdate, [request], spawnUpdateId(request.vm_id, request.attempt));
    },
    destroy(tenantId, vmId, context, storageGb) {
      return update(tenantId, destroyVmUpdate, [{ vm_id: vmId, context, storage_gb: storageGb }], `destroy-${vmId}`);
    },
  };
}
