import { DiscardPolicy, nanos, type JetStreamManager, type StreamConfig } from 'nats';
import type { Config } from '../config/config';
import { streamSubjects } from '../shared/event-subjects';

// Publishes are deduplicated by Nats-Msg-Id for this long: longer than any relay outage we replay.
const DUPLICATE_WINDOW_MS = 60 * 60 * 1000;

/**
 * How much of the event stream JetStream keeps (NATS_STREAM_MAX_AGE_HOURS, NATS_STREAM_MAX_BYTES,
 * NATS_STREAM_DISCARD, NATS_STREAM_REPLICAS; docs/configuration.md). The stream mirrors the ledger
 * (the record of truth, in Postgres), so by default the oldest events go when a limit is reached
 * (`old`): the relay keeps publishing and the disk never fills; a consumer further behind than the
 * limits reads the gap from /v1/audit. With `new`, JetStream refuses publishes once full: the relay
 * keeps retrying with its cursor where it was (no event lost, none published until there is room).
 */
export interface EventStreamLimits {
  /** 0: no age limit. */
  maxAgeHours: number;
  maxBytes: number;
  discard: 'old' | 'new';
  replicas: number;
}

/** The limits NATS_STREAM_* give the event stream (and every tenant stream). */
export function eventStreamLimits(
  config: Pick<Config, 'natsStreamMaxAgeHours' | 'natsStreamMaxBytes' | 'natsStreamDiscard' | 'natsStreamReplicas'>,
): EventStreamLimits {
  return {
    maxAgeHours: config.natsStreamMaxAgeHours,
    maxBytes: config.natsStreamMaxBytes,
    discard: config.natsStreamDiscard,
    replicas: config.natsStreamReplicas,
  };
}

/** The stream settings that carry the limits: the event stream's and every tenant stream's (src/events/tenant-streams.ts). */
export function limitsConfig(limits: EventStreamLimits | undefined): Partial<StreamConfig> {
  return {
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    ...(limits
      ? {
          max_age: nanos(limits.maxAgeHours * 3_600_000),
          max_bytes: limits.maxBytes,
          discard: limits.discard === 'new' ? DiscardPolicy.New : DiscardPolicy.Old,
          num_replicas: limits.replicas,
        }
      : {}),
  };
}

/** Creates the stream, or brings an existing one's settings to `config`; safe to call again and from several processes at once. */
export async function upsertStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<'created' | 'updated'> {
  try {
    await jsm.streams.info(config.name);
    await jsm.streams.update(config.name, config);
    return 'updated';
  } catch (error) {
    if (!isStreamNotFound(error)) throw error;
    await jsm.streams.add(config).catch(async (addError: unknown) => {
      // Another process created it between our info and add.
      if (!/already in use|exists/i.test(String(addError))) throw addError;
    });
    return 'created';
  }
}

export function isStreamNotFound(error: unknown): boolean {
  return (error as { code?: string }).code === '404' || /stream not found/i.test(String(error));
}

/**
 * Creates the event stream, or brings its settings up to date (limits included); safe to call at
 * every start. Without `limits` (tests of a throwaway stream) JetStream's own defaults apply: no limits.
 */
export async function ensureEventStream(jsm: JetStreamManager, name: string, subjectPrefix: string, limits?: EventStreamLimits): Promise<void> {
  await upsertStream(jsm, { name, subjects: streamSubjects(subjectPrefix), ...limitsConfig(limits) });
}
