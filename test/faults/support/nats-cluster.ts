/**
 * A three-node NATS JetStream cluster on this machine, as production runs NATS: three nats-server
 * processes, each with its own store directory, client port and cluster port, routed to each other.
 * A node can be SIGKILLed and started again on the same ports and store (it rejoins and catches up).
 */
import { mkdirSync } from 'node:fs';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
import { spawnManaged, type ManagedChild } from '../../../src/devstack/child-process';
import { getFreePort } from '../../../src/devstack/free-port';
import { acceptsTcp, waitUntilReady } from '../../../src/devstack/readiness';

const BINARY = existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server';

export class NatsClusterNode {
  private child: ManagedChild | null = null;
  constructor(
    readonly name: string,
    private readonly args: readonly string[],
    readonly port: number,
    private readonly onLine: (line: string) => void,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  isRunning(): boolean {
    return this.child !== null && !this.child.hasExited();
  }

  async start(): Promise<void> {
    this.child = spawnManaged(this.name, BINARY, this.args, { onLine: (line) => this.onLine(`[${this.name}] ${line}`) });
    await waitUntilReady(this.child, acceptsTcp(this.port), `nats-server ${this.name}`, 15_000);
  }

  /** SIGKILL: no shutdown, no leadership handed over. */
  async kill(): Promise<void> {
    await this.child?.kill();
  }

  async stop(): Promise<void> {
    await this.child?.stop(10_000);
  }
}

export interface NatsCluster {
  readonly nodes: readonly NatsClusterNode[];
  /** NATS_URL for the cluster: every node, comma-separated. */
  readonly url: string;
  /** The node of a server name (`n0`…), as JetStream names a stream's leader. */
  node(name: string): NatsClusterNode;
  stop(): Promise<void>;
}

/** Starts the three nodes and waits until JetStream has a meta leader (streams can be created). */
export async function startNatsCluster(dir: string, onLine: (line: string) => void): Promise<NatsCluster> {
  const ports = await Promise.all(Array.from({ length: 6 }, () => getFreePort()));
  const clientPorts = ports.slice(0, 3);
  const routePorts = ports.slice(3);
  const nodes = clientPorts.map((port, i) => {
    const storeDir = path.join(dir, `n${i}`);
    mkdirSync(storeDir, { recursive: true });
    const routes = routePorts.filter((_, j) => j !== i).map((p) => `nats-route://127.0.0.1:${p}`);
    const args = ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir, '-n', `n${i}`, '--cluster_name', 'vmt'];
    args.push('--cluster', `nats://127.0.0.1:${routePorts[i]}`, '--routes', routes.join(','));
    return new NatsClusterNode(`n${i}`, args, port, onLine);
  });
  const cluster: NatsCluster = {
    nodes,
    url: nodes.map((n) => n.url).join(','),
    node(name) {
      const node = nodes.find((n) => n.name === name);
      if (!node) throw new Error(`no node ${name} in the cluster`);
      return node;
    },
    async stop() {
      await Promise.allSettled(nodes.map((n) => n.stop()));
    },
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    await untilJetStreamReady(nodes.map((n) => n.url));
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

async function untilJetStreamReady(servers: string[]): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const nc = await connect({ servers, timeout: 2_000, reconnect: false });
      try {
        await (await nc.jetstreamManager({ timeout: 2_000 })).getAccountInfo();
        return;
      } finally {
        await nc.close();
      }
    } catch (error) {
      last = error;
      await sleep(250);
    }
  }
  throw new Error(`the NATS cluster has no JetStream meta leader after 30 s: ${String(last)}`);
}
