import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from '../logging/logger';
import type { RevocationWatch } from './active-token-cache';

/** The channel migration 2026_12_06_0011 notifies on every change to api_tokens, and on a tenant's deletion. */
export const TOKEN_REVOCATION_CHANNEL = 'api_tokens_changed';

export interface TokenRevocationWatchOptions {
  databaseUrl: string;
  /** Called on every notification, and after each (re)connection: the cache clears. */
  onRevocation: () => void;
  log: Logger;
  /** How often the session proves it is alive (default 200 ms; the cache wants proof newer than its 500 ms). */
  heartbeatMs?: number;
  /** Deadline of each statement and of the connection (default 2 s). */
  timeoutMs?: number;
  clock?: () => number;
}

/**
 * One session per API process that LISTENs for token revocations (a trigger notifies in the revoking
 * transaction, so a notification is sent when, and only if, it commits) and clears the token cache on
 * each. It vouches for the cache's long-lived entries with `heardUpTo()`: the start of its newest
 * heartbeat that was answered. Postgres signals every listening session when the notifying
 * transaction commits, before that commit is acknowledged, and a session sends what it was signalled
 * before it answers its next statement; a client reads the notifications before the answer. So every
 * revocation acknowledged before a heartbeat was sent has cleared the cache by the time it is answered.
 * A lost session (heartbeats unanswered) stops vouching; each new one clears the cache once it listens,
 * since what was revoked meanwhile was not heard.
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
      client.on('notification', () => onRevocation());
      try {
        await Promise.race([client.connect(), this.stopping]);
        if (this.stopped) return;
        await client.query(`listen ${TOKEN_REVOCATION_CHANNEL}`);
        onRevocation();
        while (!this.stopped) {
          const sent = this.clock();
          await client.query('select 1');
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
