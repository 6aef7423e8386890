import { DiscardPolicy, nanos, type JetStreamManager, type StreamConfig } from 'nats';
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

function streamConfig(name: string, subjectPrefix: string, limits: EventStreamLimits | undefined): Partial<StreamConfig> & { name: string } {
  return {
    name,
    subjects: streamSubjects(subjectPrefix),
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

/**
 * Creates the event stream, or brings its settings up to date (limits included); safe to call at
 * every start. Without `limits` (tests of a throwaway stream) JetStream's own defaults apply: no limits.
 */
export async function ensureEventStream(jsm: JetStreamManager, name: string, subjectPrefix: string, limits?: EventStreamLimits): Promise<void> {
  const config = streamConfig(name, subjectPrefix, limits);
  try {
    await jsm.streams.info(name);
    await jsm.streams.update(name, config);
  } catch (error) {
    if ((error as { code?: string }).code !== '404' && !/stream not found/i.test(String(error))) throw error;
    await jsm.streams.add(config).catch(async (addError: unknown) => {
      // Another process created it between our info and add.
      if (!/already in use|exists/i.test(String(addError))) throw addError;
    });
  }
}
