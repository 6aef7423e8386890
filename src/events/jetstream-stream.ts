import { nanos, type JetStreamManager } from 'nats';
import { streamSubjects } from '../shared/event-subjects';

// Publishes are deduplicated by Nats-Msg-Id for this long: longer than any relay outage we replay.
const DUPLICATE_WINDOW_MS = 60 * 60 * 1000;

/** Creates the event stream, or brings its settings up to date; safe to call at every start. */
export async function ensureEventStream(jsm: JetStreamManager, name: string, subjectPrefix: string): Promise<void> {
  const config = { name, subjects: streamSubjects(subjectPrefix), duplicate_window: nanos(DUPLICATE_WINDOW_MS) };
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
