import { connect } from 'nats';

/** Deletes a stack's JetStream streams from a shared server; missing streams and an unreachable server are left alone. */
export async function deleteStreams(natsUrl: string, streams: readonly string[]): Promise<void> {
  const nc = await connect({ servers: natsUrl, name: 'vm-tenant-stream-cleanup' }).catch(() => null);
  if (!nc) return;
  try {
    const jsm = await nc.jetstreamManager();
    for (const stream of streams) await jsm.streams.delete(stream).catch(() => undefined);
  } finally {
    await nc.close();
  }
}
