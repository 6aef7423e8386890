/**
 * NATS as production runs it: a three-node JetStream cluster (test/faults/support/nats-cluster.ts)
 * with the event stream and the checkpoint stream at three replicas (NATS_STREAM_REPLICAS=3), and
 * NATS_URL listing the three servers. The node leading the event stream is SIGKILLed in the middle
 * of a burst of spawns and started again once the streams moved on without it (8 s at least). While it is down the API keeps answering
 * (202, or a documented 503), the relay keeps publishing (a new leader is elected among the two
 * replicas left) and the signer keeps checkpointing; afterwards the stream holds every ledger event
 * once (convergence), and `vm-tenant-events`, started before the burst, printed each of its
 * tenant's events once, through the failover.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type NatsConnection, type StreamInfo } from 'nats';
import { spawnManaged, type ManagedChild } from '../../src/devstack/child-process';
import { checkpointSubject } from '../../src/ledger/checkpoint-stream';
import { usePrivateStack, type PrivateStack } from '../helpers/private-stack';
import { createTenants, startBurst, statusHistogram } from './support/burst';
import { expectConvergence } from './support/convergence';
import { startNatsCluster, type NatsCluster } from './support/nats-cluster';

const REPLICAS = 3;
/** The node stays down at least this long… */
const DOWN_MS = 8_000;
/** …and until the streams moved on without it: JetStream's Raft election timeouts are random, several seconds. */
const FAILOVER_MS = 20_000;
const SPAWNS_PER_TENANT = 8;
const CHECKPOINT_STREAM = 'VM_TENANT_CHECKPOINTS';

describe('fault: a node of a three-node NATS cluster SIGKILLed mid-burst', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-nats-cluster-'));
  const clusterLog: string[] = [];
  let cluster: NatsCluster;
  beforeAll(async () => {
    cluster = await startNatsCluster(dir, (line) => clusterLog.push(line));
  }, 60_000);
  const stack = usePrivateStack(() => ({
    fleetBootMs: 300,
    workerEnv: { NATS_URL: cluster.url, NATS_STREAM_REPLICAS: String(REPLICAS), LEDGER_CHECKPOINT_EVERY_SECONDS: '1' },
    apiEnv: { NATS_URL: cluster.url },
  }));
  afterAll(async () => {
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  let nc: NatsConnection;
  beforeAll(async () => {
    nc = await connect({ servers: cluster.nodes.map((n) => n.url), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  });
  afterAll(async () => nc?.close());

  /** Stream info through whichever node answers; null while the stream has no leader. */
  async function streamInfo(name: string): Promise<StreamInfo | null> {
    try {
      return await (await nc.jetstreamManager({ timeout: 2_000 })).streams.info(name);
    } catch {
      return null;
    }
  }

  async function until<T>(what: string, read: () => Promise<T | null>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (value !== null) return value;
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms\n${clusterLog.slice(-20).join('\n')}`);
      await sleep(250);
    }
  }

  /**
   * `vm-tenant-events --from-start` for one tenant, connected to `natsUrl` (the node about to be
   * killed: it learns the others from it, as nats.js does, and must move to one); its output lines, parsed.
   */
  function tailEvents(s: PrivateStack, tenantId: string, natsUrl: string): { child: ManagedChild; events: { event_id: string }[] } {
    const events: { event_id: string }[] = [];
    const env = { ...process.env, NATS_URL: natsUrl, NATS_STREAM: s.natsStream, NATS_SUBJECT_PREFIX: s.natsSubjectPrefix };
    const child = spawnManaged('vm-tenant-events', process.execPath, ['bin/vm-tenant-events.js', '--tenant', tenantId, '--from-start'], {
      env,
      onLine: (line, stream) => {
        if (stream === 'stdout' && line.startsWith('{')) events.push(JSON.parse(line) as { event_id: string });
        else clusterLog.push(`[vm-tenant-events] ${line}`);
      },
    });
    return { child, events };
  }

  test('when the event stream leader is SIGKILLed mid-burst and restarted, then the API answers, events and checkpoints keep flowing, none lost or doubled, and vm-tenant-events follows', async () => {
    // Both streams are replicated on the three nodes.
    for (const name of [stack.natsStream, CHECKPOINT_STREAM]) {
      const info = await until(`stream ${name} exists`, () => streamInfo(name), 15_000);
      expect({ name, replicas: info.config.num_replicas, peers: (info.cluster?.replicas ?? []).length + 1 }).toEqual({
        name,
        replicas: REPLICAS,
        peers: REPLICAS,
      });
    }

    const tenants = await createTenants(stack, 2, 'nc');
    const leader = cluster.node((await until('the event stream has a leader', () => streamInfo(stack.natsStream), 10_000)).cluster!.leader!);
    const tail = tailEvents(stack, tenants[0]!.tenantId, leader.url);
    try {
      const burst = startBurst(stack, tenants, {
        spawns: SPAWNS_PER_TENANT,
        destroyEvery: 3,
        concurrency: 2,
        paceMs: 400,
        keyPrefix: 'nc',
        attemptTimeoutMs: 30_000,
      });
      await burst.whenFinal(4);
      // The CLI is connected to the node about to die and is printing (a cold start of tsx takes seconds here).
      await until('vm-tenant-events printing', async () => (tail.events.length > 0 ? true : null), 30_000);

      const before = await until('the event stream has a leader', () => streamInfo(stack.natsStream), 10_000);
      expect(before.cluster?.leader).toBe(leader.name);
      const checkpointsBefore = (await until('the checkpoint stream answers', () => streamInfo(CHECKPOINT_STREAM), 10_000)).state.last_seq;
      await leader.kill();
      const downFrom = Date.now();
      // While the node is down: a new leader takes the event stream, the relay publishes to it, the signer checkpoints.
      const eventsWhileDown = await until(
        'events published while the leader is down',
        async () => {
          const info = await streamInfo(stack.natsStream);
          return info && info.cluster?.leader !== leader.name && info.state.last_seq > before.state.last_seq ? info.state.last_seq : null;
        },
        FAILOVER_MS,
      );
      const checkpointsWhileDown = await until(
        'checkpoints published while the node is down',
        async () => {
          const info = await streamInfo(CHECKPOINT_STREAM);
          return info && info.state.last_seq > checkpointsBefore ? info.state.last_seq : null;
        },
        Math.max(1_000, FAILOVER_MS - (Date.now() - downFrom)),
      );
      await sleep(Math.max(0, DOWN_MS - (Date.now() - downFrom)));
      const downTo = Date.now();
      await leader.start();
      await burst.done;

      // The API kept answering: every attempt answered 202 or a documented 503, and every request ended 202.
      const attempts = burst.requests.flatMap((r) => r.attempts);
      expect(attempts.filter((a) => !(a.status === 202 || (a.status === 503 && a.code === 'dependency_unavailable')))).toEqual([]);
      expect(burst.requests.filter((r) => r.final !== 202).map((r) => ({ key: r.key, answers: statusHistogram(r.attempts) }))).toEqual([]);
      expect(attempts.filter((a) => a.at >= downFrom && a.at <= downTo).length).toBeGreaterThan(0);

      // No lifecycle event lost or published twice: the stream against the ledger (read from the restarted node).
      const restarted = new Proxy(stack, { get: (target, key) => (key === 'natsUrl' ? leader.url : Reflect.get(target, key)) });
      const report = await expectConvergence(
        restarted,
        tenants.map((t) => t.tenantId),
        burst.requests,
        45_000,
      );
      expect(report.vms).toBe(2 * SPAWNS_PER_TENANT);
      expect(eventsWhileDown).toBeGreaterThan(before.state.last_seq);
      expect(checkpointsWhileDown).toBeGreaterThan(checkpointsBefore);
      // Checkpoints keep coming after the node is back, too: the newest one signs the ledger's head.
      const head = await stack.db
        .selectFrom('audit_events')
        .select((eb) => eb.fn.max('seq').as('seq'))
        .executeTakeFirstOrThrow();
      await until(
        `a checkpoint of the ledger head (seq ${String(head.seq)})`,
        async () => {
          const message = await (
            await nc.jetstreamManager({ timeout: 2_000 })
          ).streams
            .getMessage(CHECKPOINT_STREAM, { last_by_subj: checkpointSubject(stack.natsSubjectPrefix) })
            .catch(() => null);
          return message && Number(message.json<{ head: { seq: number | string } }>().head.seq) >= Number(head.seq) ? true : null;
        },
        10_000,
      );

      // vm-tenant-events followed through the failover: every ledger event of its tenant, each once.
      const ledger = await stack.db.selectFrom('audit_events').select('event_id').where('tenant_id', '=', tenants[0]!.tenantId).execute();
      const expected = ledger.map((e) => e.event_id).sort();
      await until('vm-tenant-events printed every event of its tenant', async () => tail.events.length >= expected.length || null, 15_000).catch(() => null);
      expect({ exited: tail.child.hasExited(), stderr: clusterLog.filter((l) => l.startsWith('[vm-tenant-events]')) }).toEqual({ exited: false, stderr: [] });
      expect(tail.events.map((e) => e.event_id).sort()).toEqual(expected);
    } finally {
      await tail.child.stop(5_000);
    }
  }, 150_000);
});
