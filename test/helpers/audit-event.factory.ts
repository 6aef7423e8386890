import { randomUUID } from 'node:crypto';
import type { NewAuditEvent } from '../../src/ledger/ledger-append';
import type { RequestContext } from '../../src/shared/request-context';

export function requestContext(overrides: Partial<RequestContext> = {}): RequestContext {
  return {
    request_id: `req-${randomUUID()}`,
    actor_token_id: 'tok_admin_test',
    actor_scope: 'service:admin',
    source_ip: '127.0.0.1',
    user_agent: 'jest',
    ...overrides,
  };
}

/** A valid ledger event with a fresh event id; override what the test is about. */
export function newAuditEvent(overrides: Partial<Omit<NewAuditEvent, 'context'>> & { context?: Partial<RequestContext> } = {}): NewAuditEvent {
  const { context, ...rest } = overrides;
  return {
    event_id: randomUUID(),
    event_type: 'TENANT_CREATED',
    tenant_id: `t-${randomUUID().slice(0, 8)}`,
    details: {},
    ...rest,
    context: requestContext(context),
  };
}
