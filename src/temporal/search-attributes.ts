import { status } from '@grpc/grpc-js';
import type { Client } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { CallDeadline } from './call-deadline';
import { grpcStatusOf, TemporalUnavailableError } from './temporal-unavailable';

/** Registered on the namespace (the dev server's --search-attribute TenantId=Keyword). */
export const TENANT_ID_SEARCH_ATTRIBUTE = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);

const POLL_MS = 200;
// Answers meaning "this server does not let us read or add search attributes" (Temporal Cloud, a
// restricted API key): the operator registered it (docs/deploy.md), the start goes ahead.
const NOT_OURS_TO_CHECK: ReadonlySet<status> = new Set([status.PERMISSION_DENIED, status.UNIMPLEMENTED]);

/**
 * Waits, before the first workflow start of this process, until the namespace lists the TenantId
 * search attribute: a start that names an attribute the namespace does not know yet is refused.
 * Adds it if it is missing (once), then polls until it is visible, within the caller's deadline
 * (past it: TemporalUnavailableError, the API's 503). Once seen, `ready` answers at once.
 */
export function searchAttributeRegistration(client: Client, pollMs = POLL_MS): { ready(deadline: CallDeadline): Promise<void> } {
  let registered = false;
  let waiting: Promise<void> | undefined;
  return {
    async ready(deadline) {
      if (registered) return;
      waiting ??= waitRegistered(client, deadline, pollMs)
        .then(() => {
          registered = true;
        })
        .finally(() => {
          waiting = undefined;
        });
      await waiting;
    },
  };
}

async function waitRegistered(client: Client, deadline: CallDeadline, pollMs: number): Promise<void> {
  const { namespace } = client.options;
  const name = TENANT_ID_SEARCH_ATTRIBUTE.name;
  const operator = client.connection.operatorService;
  const started = Date.now();
  let asked = false;
  for (;;) {
    try {
      const listed = await operator.listSearchAttributes({ namespace });
      if (listed.customAttributes?.[name] !== undefined) return;
      if (!asked) {
        asked = true;
        await operator
          .addSearchAttributes({ namespace, searchAttributes: { [name]: temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD } })
          .catch((error: unknown) => {
            if (grpcStatusOf(error) !== status.ALREADY_EXISTS) throw error;
          });
      }
    } catch (error) {
      const code = grpcStatusOf(error);
      if (code !== undefined && NOT_OURS_TO_CHECK.has(code)) return;
      throw error;
    }
    if (deadline.remainingMs() <= pollMs) {
      throw new TemporalUnavailableError(`registration of the ${name} search attribute on namespace ${namespace}`, Date.now() - started, {
        cause: new Error(`namespace ${namespace} does not list the ${name} (Keyword) search attribute yet`),
      });
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
