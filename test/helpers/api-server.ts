import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApi, type ApiOverrides, type BuiltApi } from '../../src/api/build-api';
import type { Config } from '../../src/config/config';
import { createLogger } from '../../src/logging/logger';
import { testConfig } from './test-env';

export interface ServedApi {
  api: BuiltApi;
  url: string;
  /** Stops listening and releases every connection the API holds. */
  close(): Promise<void>;
}

/**
 * The API as its entry point wires it (buildApi), on a random loopback port, against this run's
 * services unless `config` says otherwise. Silent, and without the bootstrap admin token (tests
 * insert their own token rows).
 */
export async function serveApi(config: Config = testConfig(), overrides: ApiOverrides = {}): Promise<ServedApi> {
  const api = await buildApi(config, { log: createLogger({ name: 'test', level: 'silent' }), bootstrapAdminToken: false, ...overrides });
  const server = createServer(api.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    api,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await api.close();
    },
  };
}
