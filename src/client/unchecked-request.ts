import type { Client } from 'openapi-fetch';
import type { VmTenantClient } from './vm-tenant-client';

type AnyOperation = { requestBody?: { content: { 'application/json': unknown } } };
type UncheckedClient = Client<Record<string, Record<'get', AnyOperation>>>;

export interface UncheckedInit {
  body?: unknown;
  headers?: Record<string, string | null | undefined>;
  query?: Record<string, string | number | undefined>;
  parseAs?: 'json' | 'text';
}

/**
 * A call through the typed client (its headers, deadline and middleware) whose path the compiler
 * does not check: for routes built at run time from input, e.g. `/v1/vms/${vmId}` from a CLI
 * argument or `DELETE` chosen by a caller. Prefer `client.GET('/v1/vms/{vm_id}', …)` wherever
 * the path is known when the code is written.
 */
export function requestUnchecked(client: VmTenantClient, method: string, path: string, init: UncheckedInit = {}) {
  const { query, ...rest } = init;
  // The method is one of the document's; openapi-fetch upper-cases it and sends it as given.
  return (client as unknown as UncheckedClient).request(method.toLowerCase() as 'get', path, { ...rest, params: { query } });
}
