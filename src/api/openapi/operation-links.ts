import type { RouteDoc } from './route-docs';

/** The operationId of a route: method and path in camel case (getV1VmsVm_id). */
export function operationId(doc: Pick<RouteDoc, 'method' | 'path'>): string {
  return `${doc.method.toLowerCase()}${doc.path.replace(/[/:.]+(\w)/g, (_m, c: string) => c.toUpperCase())}`;
}

const op = (method: RouteDoc['method'], path: string) => operationId({ method, path });

/**
 * OpenAPI links from a creation to what it created: they tell a client (and Schemathesis's
 * stateful phase) that the id in the answer is the id the other operations take.
 */
const LINKS: Record<string, Record<string, { operationId: string; parameters: Record<string, string> }>> = {
  [op('POST', '/v1/tenants')]: {
    GetTenant: { operationId: op('GET', '/v1/tenants/:tenant_id'), parameters: { tenant_id: '$response.body#/tenant_id' } },
    UpdateTenant: { operationId: op('PATCH', '/v1/tenants/:tenant_id'), parameters: { tenant_id: '$response.body#/tenant_id' } },
    DeleteTenant: { operationId: op('DELETE', '/v1/tenants/:tenant_id'), parameters: { tenant_id: '$response.body#/tenant_id' } },
    IssueToken: { operationId: op('POST', '/v1/tenants/:tenant_id/tokens'), parameters: { tenant_id: '$response.body#/tenant_id' } },
  },
  [op('POST', '/v1/tenants/:tenant_id/tokens')]: {
    ListTokens: { operationId: op('GET', '/v1/tenants/:tenant_id/tokens'), parameters: { tenant_id: '$response.body#/tenant_id' } },
    RevokeToken: {
      operationId: op('DELETE', '/v1/tenants/:tenant_id/tokens/:token_id'),
      parameters: { tenant_id: '$response.body#/tenant_id', token_id: '$response.body#/token_id' },
    },
  },
  [op('POST', '/v1/vms')]: {
    GetVm: { operationId: op('GET', '/v1/vms/:vm_id'), parameters: { vm_id: '$response.body#/vm_id' } },
    DestroyVm: { operationId: op('DELETE', '/v1/vms/:vm_id'), parameters: { vm_id: '$response.body#/vm_id' } },
  },
};

export function operationLinks(doc: RouteDoc): Record<string, unknown> | undefined {
  return LINKS[operationId(doc)];
}
