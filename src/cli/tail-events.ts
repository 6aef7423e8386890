import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeliverPolicy, type ConsumerMessages, type NatsConnection, type OrderedConsumerOptions } from 'nats';
import { loadConfig } from '../config/config';
import { ownerSubjectFilter } from '../shared/event-subjects';
import { isTenantId } from '../shared/tenant-id';
import { connectNats } from '../events/nats-connection';
import { tenantStreamName } from '../events/tenant-streams';
import type { LifecycleEvent } from '../events/event-payload';

const HELP = `Usage: vm-tenant-events --tenant <tenant_id> [--tenant-stream] [--from-start | --since <ISO time>] [--no-follow]
                        [--inbox-prefix <prefix>]

Prints the lifecycle events of one tenant from the NATS stream as JSON lines.
The tenant is the last token of every subject: the server delivers only that tenant's events.

  --tenant         tenant id (required)
  --tenant-stream  read the tenant's own stream, <NATS_STREAM>_T_<tenant_id> (service-fs tenant-stream),
                   whose sequence counts only its events, instead of the stream of every tenant
  --from-start     replay the whole stream first (default: only new events)
  --since          replay events from this time (on --tenant-stream: the time they reached that stream)
  --no-follow      exit once caught up instead of waiting for new events
  --inbox-prefix   where replies come (default _INBOX): the private prefix a tenant's NATS user is
                   confined to, e.g. _INBOX_<tenant_id> (docs/events.md)
Environment: NATS_URL, NATS_CREDS_FILE, NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE, NATS_TLS_KEY_FILE,
NATS_STREAM, NATS_SUBJECT_PREFIX`;

/** The stream sequence of the newest message on the filter's subjects; 0 when there is none. */
async function lastSeqOf(nc: NatsConnection, stream: string, filter: string): Promise<number> {
  // No $JS.API.INFO: a tenant's user may not see the account's (every tenant's) totals.
  const { state } = await (await nc.jetstreamManager({ checkAPI: false })).streams.info(stream, { subjects_filter: filter });
  if (Object.keys(state.subjects ?? {}).length === 0) return 0;
  return state.last_seq;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      tenant: { type: 'string' },
      'tenant-stream': { type: 'boolean', default: false },
      'inbox-prefix': { type: 'string' },
      'from-start': { type: 'boolean', default: false },
      since: { type: 'string' },
      'no-follow': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (!isTenantId(values.tenant)) {
    console.error(`--tenant must be a tenant id\n\n${HELP}`);
    return 2;
  }
  const since = values.since ? new Date(values.since) : undefined;
  if (since && Number.isNaN(since.getTime())) {
    console.error('--since must be an ISO 8601 time');
    return 2;
  }
  const config = loadConfig();
  const nc = await connectNats(config.nats, { name: 'vm-tenant-events', waitForServer: false, inboxPrefix: values['inbox-prefix'] });
  // The consumer's filter_subject: the server sends this tenant's events and nothing else (on the
  // tenant's own stream every message matches it; its sequence then counts only this tenant's events).
  const filter = ownerSubjectFilter(config.natsSubjectPrefix, values.tenant);
  const stream = values['tenant-stream'] ? tenantStreamName(config.natsStream, values.tenant) : config.natsStream;
  const opts: Partial<OrderedConsumerOptions> = { filterSubjects: filter };
  if (since) Object.assign(opts, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: since.toISOString() });
  // An ordered consumer starts at the beginning by default (and an explicit DeliverPolicy.All stalls it).
  else if (!values['from-start']) opts.deliver_policy = DeliverPolicy.New;
  const stop = () => void nc.close();
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // With --no-follow, stop at what the stream held for this tenant when we started.
  const lastSeq = values['no-follow'] ? await lastSeqOf(nc, stream, filter) : Infinity;
  if (lastSeq === 0) {
    await nc.close();
    return 0;
  }
  // On a NATS cluster the server we read from can die (its ordered consumer with it): after a
  // reconnect the consumer is made again on the stream's current leader, from the event after the
  // last one printed, so the output goes on with nothing skipped or printed twice.
  let resumeAt = 0;
  const current: { messages: ConsumerMessages | null } = { messages: null };
  void (async () => {
    for await (const status of nc.status()) if (status.type === 'reconnect') current.messages?.stop();
  })();
  for (let finished = false; !finished && !nc.isClosed();) {
    const from = resumeAt ? { filterSubjects: filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAt } : opts;
    try {
      current.messages = await (await nc.jetstream().consumers.get(stream, from)).consume();
    } catch (error) {
      // A stream electing its leader after a node died answers 503 for a few seconds.
      if (nc.isClosed() || resumeAt === 0) throw error;
      await sleep(500);
      continue;
    }
    for await (const message of current.messages) {
      const event = message.json<LifecycleEvent>();
      console.log(JSON.stringify({ subject: message.subject, ...event }));
      resumeAt = message.info.streamSequence + 1;
      if (message.info.streamSequence >= lastSeq || (values['no-follow'] && message.info.pending === 0)) {
        finished = true;
        break;
      }
    }
  }
  await nc.close();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`vm-tenant-events: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(3);
  },
);
