import { nanos, type JetStreamClient, type JetStreamManager } from 'nats';

/**
 * Signed ledger checkpoints live in their own JetStream stream, outside Postgres: a database
 * superuser who rewrites the ledger cannot reach them. The stream refuses message deletes and
 * purges (deny_delete, deny_purge: once set, the server never lets an update unset them), keeps
 * every message (no age, count or size limit) and allows no roll-ups. What it cannot refuse is the
 * deletion of the whole stream by a NATS user with JetStream API rights: deny that in the NATS
 * account's permissions ($JS.API.STREAM.DELETE.<name>). A deleted stream does not reset the
 * history: each checkpoint names the one before it, the signer keeps its last one beside its key
 * and refuses a stream that lost it, and `service-fs verify` reports a missing stream, missing
 * first checkpoints, or a series that follows a checkpoint the stream does not hold. Anyone who
 * may publish on the subject can add messages; nothing reads them as checkpoints unless the key
 * signed them (see src/ledger/checkpoint-link.ts).
 */
export function checkpointSubject(subjectPrefix: string): string {
  // Outside `<prefix>.>`, which the event stream holds: two streams cannot share a subject.
  return `${subjectPrefix}_ledger.checkpoint`;
}

const DUPLICATE_WINDOW_MS = 10 * 60 * 1000;

export class CheckpointStreamMissingError extends Error {
  override readonly name = 'CheckpointStreamMissingError';
}

function isNotFound(error: unknown): boolean {
  return (error as { code?: string }).code === '404' || /not found/i.test(String(error));
}

/**
 * Creates the checkpoint stream with `replicas` copies (NATS_STREAM_REPLICAS, as the event stream:
 * 3 on a three-node cluster, so one node lost keeps it writable; without it JetStream's default,
 * one), or brings an older stream's protections up to date. The replicas of an existing stream are
 * left alone: the workers' NATS user may not reconfigure this stream (docker/nats/vm-tenant-users.conf),
 * an operator changes them (`nats stream edit <name> --replicas 3`, docs/deploy.md). Returns the
 * stream's replicas, for the caller to warn when they are not the ones asked for.
 */
export async function ensureCheckpointStream(jsm: JetStreamManager, name: string, subjectPrefix: string, replicas?: number): Promise<{ replicas: number }> {
  const config = {
    name,
    subjects: [checkpointSubject(subjectPrefix)],
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    ...(replicas === undefined ? {} : { num_replicas: replicas }),
  };
  try {
    const info = await jsm.streams.info(name);
    if (!info.config.deny_delete || !info.config.deny_purge) await jsm.streams.update(name, { ...config, num_replicas: info.config.num_replicas });
    return { replicas: info.config.num_replicas };
  } catch (error) {
    if (!isNotFound(error)) throw error;
    const created = await jsm.streams.add(config).catch(async (addError: unknown) => {
      if (!/already in use|exists/i.test(String(addError))) throw addError;
      return jsm.streams.info(name);
    });
    return { replicas: created.config.num_replicas };
  }
}

export type PublishOutcome = { streamSeq: number } | { conflict: string };

/**
 * Publishes one link of the checkpoint series, only if the subject's last message is still the one
 * the signer read (`expectLastSeq`; 0: none) in the stream it expects: two signers (replicas, or a
 * rotation next to a running worker) cannot both extend the same link, and a stream that was
 * deleted and recreated does not take the link. The message id is the link hash, so publishing the
 * same link again stores it once.
 */
export async function publishCheckpointLink(
  js: JetStreamClient,
  stream: string,
  subjectPrefix: string,
  message: unknown,
  linkHash: string,
  expectLastSeq: number,
): Promise<PublishOutcome> {
  try {
    const ack = await js.publish(checkpointSubject(subjectPrefix), JSON.stringify(message), {
      msgID: linkHash,
      expect: { streamName: stream, lastSubjectSequence: expectLastSeq },
      timeout: 5000,
    });
    return { streamSeq: ack.seq };
  } catch (error) {
    const text = String(error);
    if (/wrong last sequence|expected stream does not match|no responders|stream not found|503/i.test(text)) return { conflict: text };
    throw error;
  }
}

/** Publishes a message on the checkpoint subject without expectations: tests and tools that forge what an attacker would. */
export async function publishCheckpoint(js: JetStreamClient, subjectPrefix: string, message: unknown): Promise<void> {
  await js.publish(checkpointSubject(subjectPrefix), typeof message === 'string' ? message : JSON.stringify(message), { timeout: 5000 });
}

/** The stream's first and last sequence numbers; null when the stream does not exist. */
export async function checkpointStreamBounds(jsm: JetStreamManager, stream: string): Promise<{ firstSeq: number; lastSeq: number; messages: number } | null> {
  try {
    const { state } = await jsm.streams.info(stream);
    return { firstSeq: state.first_seq, lastSeq: state.last_seq, messages: state.messages };
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** The text of stream message `seq`; null when it does not exist (never stored, or removed). */
export async function readCheckpointMessage(jsm: JetStreamManager, stream: string, seq: number): Promise<string | null> {
  if (seq < 1) return null;
  try {
    return (await jsm.streams.getMessage(stream, { seq })).string();
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

/** The newest message on the checkpoint subject, as stored; null when there is none. */
export async function readLastCheckpointText(jsm: JetStreamManager, stream: string, subjectPrefix: string): Promise<string | null> {
  try {
    return (await jsm.streams.getMessage(stream, { last_by_subj: checkpointSubject(subjectPrefix) })).string();
  } catch (error) {
    if (isNotFound(error)) return null;
    throw error;
  }
}

export interface StoredCheckpoints {
  /** Stream sequence numbers before the first stored one: checkpoints that are gone. */
  missingBefore: number;
  messages: Array<{ streamSeq: number; text: string }>;
}

/** Every message of the checkpoint stream, in the order they were stored. */
export async function readAllCheckpointTexts(jsm: JetStreamManager, stream: string): Promise<StoredCheckpoints> {
  let state;
  try {
    state = (await jsm.streams.info(stream)).state;
  } catch (error) {
    if (isNotFound(error)) throw new CheckpointStreamMissingError(`checkpoint stream ${stream} does not exist`);
    throw error;
  }
  const messages: StoredCheckpoints['messages'] = [];
  if (state.messages === 0) return { missingBefore: Math.max(0, state.first_seq - 1), messages };
  for (let seq = state.first_seq; seq <= state.last_seq; seq += 1) {
    const message = await jsm.streams.getMessage(stream, { seq }).catch((error: unknown) => {
      if (isNotFound(error)) return null;
      throw error;
    });
    if (message) messages.push({ streamSeq: seq, text: message.string() });
  }
  return { missingBefore: state.first_seq - 1, messages };
}
