import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';

/**
 * The event-validation hook of the test suite, as openapi-response-check.ts is for HTTP answers:
 * every NATS message a test receives is checked against docs/asyncapi.yaml alone — its subject
 * against a channel address, its Nats-Msg-Id header and its payload against that channel's
 * message, and the header against the payload's event_id (the dedupe key). Nothing of src/ is used.
 */

const ROOT = path.resolve(__dirname, '../..');

export const eventContract = parse(readFileSync(path.join(ROOT, 'docs/asyncapi.yaml'), 'utf8')) as {
  asyncapi: string;
  channels: Record<string, { address: string; messages: Record<string, { $ref: string }> }>;
  components: { messages: Record<string, { name: string; payload: object; headers: object }> };
};

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
// The whole document as one schema, so that its #/components/... references resolve.
ajv.addSchema(eventContract as object, 'asyncapi');

/** A message as a consumer receives it. */
export interface ReceivedEvent {
  subject: string;
  msgId: string | undefined;
  payload: unknown;
}

/** The channel whose address matches the subject ({parameters} are single tokens), and its message. */
export function channelFor(subject: string): { channel: string; message: string } | undefined {
  for (const [name, channel] of Object.entries(eventContract.channels)) {
    const pattern = new RegExp(`^${channel.address.replace(/\./g, '\\.').replace(/\{[a-z]+\}/g, '[^.]+')}$`);
    if (pattern.test(subject)) {
      const ref = Object.values(channel.messages)[0]!.$ref;
      return { channel: name, message: ref.replace('#/components/messages/', '') };
    }
  }
  return undefined;
}

/** Whether the document has a schema at this reference (e.g. `#/components/messages/vmRunning/payload`). */
export const hasContractSchema = (ref: string): boolean => ajv.getSchema(`asyncapi${ref}`) !== undefined;

/** What in `value` breaks the message's headers or payload schema; [] when it matches. */
export function validateEventPart(message: string, part: 'payload' | 'headers', value: unknown): string[] {
  const check = ajv.getSchema(`asyncapi#/components/messages/${message}/${part}`);
  if (!check) return [`the contract has no message ${message}`];
  return check(value) ? [] : (check.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

/** Everything in one received message that the contract does not allow, each naming the subject; [] when it matches. */
export function eventContractProblems(m: ReceivedEvent): string[] {
  const found = channelFor(m.subject);
  if (!found) return [`${m.subject}: no channel of the contract has this address`];
  const eventId = typeof m.payload === 'object' && m.payload !== null ? (m.payload as { event_id?: unknown }).event_id : undefined;
  return [
    ...validateEventPart(found.message, 'headers', { 'Nats-Msg-Id': m.msgId }).map((e) => `${m.subject} headers ${e}`),
    ...validateEventPart(found.message, 'payload', m.payload).map((e) => `${m.subject} payload ${e}: ${JSON.stringify(m.payload)}`),
    ...(m.msgId === eventId ? [] : [`${m.subject}: Nats-Msg-Id ${m.msgId} is not the event_id`]),
  ];
}

/** The problems of every message, for `expect(...).toEqual([])`. */
export const eventsContractProblems = (messages: readonly ReceivedEvent[]): string[] => messages.flatMap(eventContractProblems);
