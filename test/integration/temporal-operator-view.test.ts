import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { TENANT_ID_SEARCH_ATTRIBUTE, searchAttributeRegistration } from '../../src/temporal/search-attributes';
import { TemporalUnavailableError } from '../../src/temporal/temporal-unavailable';
import { createTenantWorkflowClient } from '../../src/temporal/tenant-workflow-client';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';
import { testEnv } from '../helpers/test-env';

jest.setTimeout(180_000);

const EventType = temporal.api.enums.v1.EventType;

/** The activities a tenant's workflow scheduled, each with the summary the Temporal UI shows on it. */
async function activitySummaries(stack: TestStack, tenantId: string): Promise<{ type: string; summary: string | undefined }[]> {
  const history = await stack.temporal.workflow.getHandle(tenantWorkflowId(tenantId)).fetchHistory();
  return (history.events ?? [])
    .filter((event) => event.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    .map((event) => {
      const payload = event.userMetadata?.summary;
      return {
        type: event.activityTaskScheduledEventAttributes?.activityType?.name ?? '',
        summary: payload ? defaultPayloadConverter.fromPayload<string>(payload) : undefined,
      };
    });
}

describe('Temporal UI: operators find a VM’s work', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startTestStack();
  });
  afterAll(async () => {
    await stack?.close();
  });

  test('when a VM is spawned and destroyed, then its boot and teardown activities carry a summary naming the VM and tenant', async () => {
    const { tenantId, token } = await createTenant(stack);
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    const vmId: string = spawned.body.vm_id;
    await eventually(async () => ((await stack.request('GET', `/v1/vms/${vmId}`, { token })).body?.status === 'running' ? true : undefined), 60_000, 'running');
    expect((await stack.request('DELETE', `/v1/vms/${vmId}`, { token })).status).toBe(202);
    const summaries = await eventually(
      async () => {
        const all = await activitySummaries(stack, tenantId);
        return all.some((a) => a.type === 'teardownVm') ? all : undefined;
      },
      60_000,
      'teardownVm scheduled',
    );
    for (const type of ['bootVm', 'teardownVm']) {
      const scheduled = summaries.filter((a) => a.type === type);
      expect(scheduled).not.toHaveLength(0);
      for (const activity of scheduled) expect(activity.summary).toMatch(new RegExp(`VM ${vmId} \\(tenant ${tenantId}\\)`));
    }
  });
});

describe('TenantId search attribute: waited for before the first start', () => {
  let connection: Connection;
  beforeAll(async () => {
    connection = await Connection.connect({ address: testEnv().temporalAddress });
  });
  afterAll(async () => {
    await connection?.close();
  });

  test('when a namespace does not list TenantId yet, then the first start registers it, waits until it is visible and starts with it', async () => {
    const namespace = `sa-${testEnv().testRunId}-${Date.now()}`.toLowerCase();
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
    const client = new Client({ connection, namespace });
    // A new namespace may take a moment to be served.
    await eventually(
      async () =>
        await connection.workflowService
          .describeNamespace({ namespace })
          .then(() => true)
          .catch(() => undefined),
      30_000,
      'namespace',
    );
    const before = await connection.operatorService.listSearchAttributes({ namespace });
    expect(before.customAttributes?.[TENANT_ID_SEARCH_ATTRIBUTE.name]).toBeUndefined();

    const workflows = createTenantWorkflowClient({ client, taskQueue: `nobody-${testEnv().testRunId}`, callTimeoutMs: 30_000 });
    await workflows.ensureStarted('sa-tenant');
    const description = await client.workflow.getHandle(tenantWorkflowId('sa-tenant')).describe();
    expect(description.typedSearchAttributes.get(TENANT_ID_SEARCH_ATTRIBUTE)).toBe('sa-tenant');
    await client.workflow.getHandle(tenantWorkflowId('sa-tenant')).terminate('test done');
  });

  test('when the attribute never becomes visible, then the wait ends at the call deadline with TemporalUnavailableError', async () => {
    const operatorService = {
      listSearchAttributes: jest.fn(async () => ({ customAttributes: {} })),
      addSearchAttributes: jest.fn(async () => ({})),
    };
    const client = { options: { namespace: 'stuck' }, connection: { operatorService } } as unknown as Client;
    const registration = searchAttributeRegistration(client, 50);
    const started = Date.now();
    const at = started + 600;
    await expect(registration.ready({ at, remainingMs: () => Math.max(0, at - Date.now()) })).rejects.toBeInstanceOf(TemporalUnavailableError);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(operatorService.addSearchAttributes).toHaveBeenCalledTimes(1);
    expect(operatorService.listSearchAttributes.mock.calls.length).toBeGreaterThan(1);
  });
});
