import { Client, type Connection } from '@temporalio/client';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { workflowClientInterceptors } from '../telemetry/temporal-tracing';
import { connectTemporalClient } from './temporal-connect';
import type { TemporalConnectionOptions } from './temporal-env-config';
import { createTenantWorkflowClient } from './tenant-workflow-client';

/** The part of the configuration the client side of the tenant workflows reads (the whole Config fits). */
export interface TenantWorkflowSettings {
  readonly temporal: { readonly connection: TemporalConnectionOptions };
  readonly temporalNamespace: string;
  readonly temporalTaskQueue: string;
  readonly temporalCallTimeoutMs: number;
  readonly tenantHistoryUpdateLimit: number;
  readonly tenantMaxInFlight: number;
  readonly vmBootTimeoutMs: number;
}

/** One Temporal client connection and the tenant workflows as seen through it. */
export interface TenantWorkflowsConnection {
  connection: Connection;
  client: Client;
  workflows: TenantWorkflowGateway;
}

/**
 * The one Temporal client setup of the API and the worker (whose admission resolver asks the
 * workflows too): the connection with its TLS and API key, the namespace, and the gateway with the
 * call deadline and the limits new runs start with. The caller closes `connection`.
 */
export async function connectTenantWorkflows(settings: TenantWorkflowSettings): Promise<TenantWorkflowsConnection> {
  const connection = await connectTemporalClient(settings.temporal.connection);
  const client = new Client({ connection, namespace: settings.temporalNamespace, interceptors: { workflow: workflowClientInterceptors() } });
  const workflows = createTenantWorkflowClient({
    client,
    taskQueue: settings.temporalTaskQueue,
    callTimeoutMs: settings.temporalCallTimeoutMs,
    continueAsNewAfterUpdates: settings.tenantHistoryUpdateLimit,
    limits: { max_in_flight: settings.tenantMaxInFlight, boot_timeout_ms: settings.vmBootTimeoutMs },
  });
  return { connection, client, workflows };
}
