import type { ConnectionOptions } from 'nats';

/**
 * The connect options for NATS_URL. nats.js takes only host and port from a server URL, so a login
 * written into it (`nats://user:password@host:4222`, what docker-compose.yml passes) is split off
 * into `user`/`pass` here rather than silently dropped.
 */
export function natsConnectOptions(natsUrl: string): Pick<ConnectionOptions, 'servers' | 'user' | 'pass'> {
  const url = new URL(natsUrl);
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  return { servers: `${url.protocol}//${url.host}`, ...(user ? { user, pass } : {}) };
}
