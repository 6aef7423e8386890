import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logging/logger';
import type { RevocationWatch } from './active-token-cache';

/** The channel migration 2026_12_06_0011 notifies on every change to api_tokens, and on a tenant's deletion (API processes of earlier releases LISTEN on it). */
export const TOKEN_REVOCATION_CHANNEL = 'api_tokens_changed';

export interface TokenRevocationWatchOptions {
  databaseUrl: string;
  /** Called on every change of the generation, and after each (re)connection: the cache clears. */
  onRevocation: () => void;
  log: Logger;
  /** How often the session proves it is alive (default 200 ms; the cache wants proof newer than its 500 ms). */
  heartbeatMs?: number;
  /** Deadline of each statement and of the connection (default 2 s). */
  timeoutMs?: number;
  clock?: () => number;
}

/**
 * One session per API process that watches for token revocations and clears the token cache on each.
 * Every change that can revoke a token moves `api_tokens_generation` on in the revoking transaction
 * (migration 2026_12_06_0013), and each heartbeat reads it: a generation other than the last one read
 * clears the cache. It vouches for the cache's long-lived entries with `heardUpTo()`: the start of its
 * newest heartbeat that was answered. A statement sees every transaction committed before it started,
 * so every revocation acknowledged before a heartbeat was sent has cleared the cache by the time that
 * heartbeat is answered. A lost session (heartbeats unanswered) stops vouching; each new one clears the
 * cache once, since what was revoked meanwhile was not seen.
 *
 * Not LISTEN: Postgres signals every listening session of the database on every notification, of any
 * channel, and each signalled session runs a transaction to read it; the ledger notifies the event
 * relay on every commit, so a listening watch cost the database a transaction per ledger commit.
 */
export class TokenRevocationWatch implements RevocationWatch {
  private heard = Number.NEGATIVE_INFINITY;
  private stopped = false;
  private client: pg.Client | null = null;
  private loop: Promise<void> | null = null;
  private readonly clock: () => number;
  /** Settles on stop(): pg's connect() never settles when end() is called while it connects. */
  private signalStop: () => void = () => undefined;
  private readonly stopping = new Promise<void>((resolve) => (this.signalStop = resolve));

  constructor(private readonly options: TokenRevocationWatchOptions) {
    this.clock = options.clock ?? (() => performance.now());
  }

  heardUpTo(): number {
    return this.heard;
  }

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.signalStop();
    await this.client?.end().catch(() => undefined);
    await this.loop;
  }

  private async run(): Promise<void> {
    const { databaseUrl, onRevocation, log } = this.options;
    const timeoutMs = this.options.timeoutMs ?? 2_000;
    while (!this.stopped) {
      const client = new pg.Client({
        connectionString: databaseUrl,
        application_name: 'vm-tenant-token-watch',
        connectionTimeoutMillis: timeoutMs,
        query_timeout: timeoutMs,
      });
      this.client = client;
      // A session the server ends must not crash the process: the next heartbeat fails instead.
      client.on('error', () => undefined);
      try {
        await Promise.race([client.connect(), this.stopping]);
        if (this.stopped) return;
        let seen: string | undefined;
        while (!this.stopped) {
          const sent = this.clock();
          const { rows } = await client.query<{ generation: string }>('select generation::text from api_tokens_generation');
          const generation = rows[0]?.generation;
          if (generation === undefined) throw new Error('api_tokens_generation holds no row: migration 2026_12_06_0013 was not applied');
          // The first reading of a session clears too: what changed while there was none was not seen.
          if (generation !== seen) onRevocation();
          seen = generation;
          this.heard = sent;
          await sleep(this.options.heartbeatMs ?? 200);
        }
      } catch (error) {
        if (!this.stopped) log.warn({ err: error }, 'token revocation watch lost its session; token cache entries live 500 ms until it is back');
      } finally {
        this.heard = Number.NEGATIVE_INFINITY;
        await client.end().catch(() => undefined);
      }
      if (!this.stopped) await sleep(1_000);
    }
  }
}
