import { AckPolicy, DeliverPolicy, nanos, type ConsumerMessages, type JetStreamManager, type NatsConnection } from 'nats';
import type { Logger } from '../logging/logger';
import { ownerSubjectFilter } from '../shared/event-subjects';
import { isTenantId } from '../shared/tenant-id';
import { isStreamNotFound, limitsConfig, upsertStream, type EventStreamLimits } from './jetstream-stream';

/**
 * Per-tenant streams (docs/events.md, "A stream of the tenant's own"). The event stream holds every
 * tenant's events, so the stream sequence of a delivery from it (in its `$JS.ACK…` reply subject)
 * counts other tenants' activity. A tenant reads instead from a stream of its own, whose sequence
 * runs 1, 2, 3… over its events alone. Two streams per tenant, because a sourced message carries a
 * `Nats-Stream-Source: <origin> <origin's sequence>` header: sourced straight from the event stream,
 * a tenant stream would hand every tenant the platform-wide sequence in that header instead.
 *
 *   <NATS_STREAM>                   every subject; the relay publishes here
 *   <NATS_STREAM>_TS_<tenant>       staging: sources the event stream, filter `<prefix>.*.*.<tenant>`;
 *                                   its messages' header names the event stream's sequence; no tenant reads it
 *   <NATS_STREAM>_T_<tenant>        the tenant's: sources the staging stream; its header names the
 *                                   staging stream's sequence, which counts only this tenant's events
 *
 * Neither has subjects of its own (they would overlap the event stream's). Both take the event
 * stream's limits. Tenant ids are `[a-z0-9-]`, legal in a stream name and in an API subject token
 * as they are, and never contain `_`, so the names are distinct for distinct tenants and never
 * collide with each other.
 */
export interface TenantStreamSpec {
  /** NATS_STREAM: the event stream the tenant's events are sourced from. */
  mainStream: string;
  subjectPrefix: string;
  tenantId: string;
  /** The event stream's limits (NATS_STREAM_*); undefined: JetStream's defaults (tests). */
  limits: EventStreamLimits | undefined;
}

export class InvalidTenantStreamError extends Error {
  override readonly name = 'InvalidTenantStreamError';
}

function checkedTenant(tenantId: string): string {
  if (!isTenantId(tenantId)) throw new InvalidTenantStreamError(`not a tenant id, cannot name a stream: ${JSON.stringify(tenantId)}`);
  return tenantId;
}

/** The stream a tenant reads: `<NATS_STREAM>_T_<tenant>`, e.g. `VM_TENANT_T_acme-corp`. */
export function tenantStreamName(mainStream: string, tenantId: string): string {
  return `${mainStream}_T_${checkedTenant(tenantId)}`;
}

/** The stream between the event stream and the tenant's, which no tenant is given access to. */
export function tenantStagingStreamName(mainStream: string, tenantId: string): string {
  return `${mainStream}_TS_${checkedTenant(tenantId)}`;
}

export interface TenantStreamResult {
  stream: string;
  staging: string;
  /** created: the tenant stream did not exist; updated: it did, and now has the current settings. */
  outcome: 'created' | 'updated';
}

/**
 * Creates a tenant's two streams, or brings their settings (limits, sources) up to date; idempotent,
 * and safe from several processes at once. A new tenant stream starts with what the event stream
 * still holds of the tenant's events, then follows it.
 */
export async function ensureTenantStream(jsm: JetStreamManager, spec: TenantStreamSpec): Promise<TenantStreamResult> {
  const stream = tenantStreamName(spec.mainStream, spec.tenantId);
  const staging = tenantStagingStreamName(spec.mainStream, spec.tenantId);
  const limits = limitsConfig(spec.limits);
  await upsertStream(jsm, {
    name: staging,
    description: `vm-tenant: the events of tenant ${spec.tenantId} from ${spec.mainStream}, for ${stream}; not for the tenant`,
    sources: [{ name: spec.mainStream, filter_subject: ownerSubjectFilter(spec.subjectPrefix, spec.tenantId) }],
    ...limits,
  });
  const outcome = await upsertStream(jsm, {
    name: stream,
    description: `vm-tenant: the events of tenant ${spec.tenantId}`,
    sources: [{ name: staging }],
    ...limits,
  });
  return { stream, staging, outcome };
}

/** Deletes a tenant's two streams (the tenant's first); false when there was neither. */
export async function removeTenantStream(jsm: JetStreamManager, spec: Pick<TenantStreamSpec, 'mainStream' | 'tenantId'>): Promise<boolean> {
  let removed = false;
  for (const name of [tenantStreamName(spec.mainStream, spec.tenantId), tenantStagingStreamName(spec.mainStream, spec.tenantId)]) {
    try {
      removed = (await jsm.streams.delete(name)) || removed;
    } catch (error) {
      if (!isStreamNotFound(error)) throw error;
    }
  }
  return removed;
}

/** The durable consumer on the event stream through which the workers keep the tenant streams. */
export const TENANT_STREAM_KEEPER = 'vm-tenant-tenant-streams';

/**
 * NATS_TENANT_STREAMS=on: the worker makes a tenant's streams when its `tenant.created` event is in
 * the event stream and deletes them at `tenant.deleted`. Every worker reads the same durable
 * consumer, one message at a time (max_ack_pending 1), so the events are applied in order whichever
 * worker takes them; a message is acknowledged once applied, and one that fails is redelivered.
 * It starts at the stream's beginning, so turning it on makes the streams of every tenant whose
 * creation the event stream still holds; older tenants need `service-fs tenant-stream`.
 */
export function startTenantStreamKeeper(nc: NatsConnection, spec: Omit<TenantStreamSpec, 'tenantId'>, log: Logger): { stop(): void } {
  let stopped = false;
  let messages: ConsumerMessages | null = null;
  const prefix = spec.subjectPrefix;
  async function apply(subject: string): Promise<void> {
    const [, family, event, tenantId] = subject.split('.');
    if (family !== 'tenant' || !isTenantId(tenantId)) return;
    const jsm = await nc.jetstreamManager();
    if (event === 'created') {
      const { stream, outcome } = await ensureTenantStream(jsm, { ...spec, tenantId });
      log.info({ tenantId, stream, outcome }, 'tenant stream ready');
    } else if (event === 'deleted') {
      await removeTenantStream(jsm, { mainStream: spec.mainStream, tenantId });
      log.info({ tenantId }, 'tenant stream removed');
    }
  }
  async function loop(): Promise<void> {
    const jsm = await nc.jetstreamManager();
    await jsm.consumers
      .add(spec.mainStream, {
        durable_name: TENANT_STREAM_KEEPER,
        filter_subject: `${prefix}.tenant.*.*`,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        max_ack_pending: 1,
        ack_wait: nanos(60_000),
      })
      .catch((error: unknown) => {
        if (!/already in use|exists/i.test(String(error))) throw error;
      });
    const consumer = await nc.jetstream().consumers.get(spec.mainStream, TENANT_STREAM_KEEPER);
    messages = await consumer.consume({ max_messages: 1 });
    if (stopped) messages.stop();
    for await (const message of messages) {
      try {
        await apply(message.subject);
        message.ack();
      } catch (error) {
        log.warn({ err: error, subject: message.subject }, 'tenant stream not applied; redelivered in 5 s');
        message.nak(5_000);
      }
    }
  }
  void (async () => {
    while (!stopped && !nc.isClosed()) {
      await loop().catch((error: unknown) => log.warn({ err: error }, 'tenant stream keeper stopped; restarting in 5 s'));
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, 5_000).unref());
    }
  })();
  return {
    stop() {
      stopped = true;
      messages?.stop();
    },
  };
}
