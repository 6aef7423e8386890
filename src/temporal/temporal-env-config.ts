import { existsSync } from 'node:fs';
import { loadClientConfigProfile, toClientOptions, type ClientConnectConfig } from '@temporalio/envconfig';
import type { Env } from '../shared/env-readers';

/** What a Client Connection and a worker's NativeConnection are given: address, TLS, API key, gRPC metadata. */
export type TemporalConnectionOptions = ClientConnectConfig['connectionOptions'] & { readonly address: string };

export interface TemporalSettings {
  readonly connection: TemporalConnectionOptions;
  readonly namespace: string;
  /** For logs: which transport and credentials are in use, never their values. */
  readonly summary: {
    readonly address: string;
    readonly namespace: string;
    readonly tls: 'off' | 'server-verified' | 'mutual';
    readonly apiKey: boolean;
    readonly profile: string | null;
  };
}

/**
 * Temporal's own environment configuration (@temporalio/envconfig), as the Temporal CLI reads it:
 * the profile `TEMPORAL_PROFILE` (default `default`) of the TOML file `TEMPORAL_CONFIG_FILE`
 * (default ~/.config/temporalio/temporal.toml, optional), overridden by `TEMPORAL_ADDRESS`,
 * `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_CLIENT_CERT_PATH`/`_DATA`,
 * `TEMPORAL_TLS_CLIENT_KEY_PATH`/`_DATA`, `TEMPORAL_TLS_SERVER_CA_CERT_PATH`/`_DATA`,
 * `TEMPORAL_TLS_SERVER_NAME` and `TEMPORAL_GRPC_META_*`. An API key turns TLS on (Temporal Cloud).
 * Certificate files are read here, so a missing one stops the start naming it.
 */
export function temporalSettingsFromEnv(env: Env, defaults: { address: string; namespace: string }, fail: (message: string) => Error): TemporalSettings {
  // Unset and empty are the same here, as everywhere in the configuration.
  const defined: Record<string, string> = {};
  for (const name of Object.keys(env)) {
    const value = env[name];
    if (value !== undefined && value !== '') defined[name] = value;
  }
  // envconfig reads the variables it knows by name; reading them through `env` lets callers see which.
  const provider = new Proxy(defined, { get: (_target, name) => (typeof name === 'string' && env[name] !== '' ? env[name] : undefined) });
  const configFile = provider.TEMPORAL_CONFIG_FILE;
  if (configFile !== undefined && !existsSync(configFile)) throw fail(`temporal: TEMPORAL_CONFIG_FILE ${configFile} does not exist`);
  let options: ClientConnectConfig;
  try {
    options = toClientOptions(loadClientConfigProfile({ overrideEnvVars: provider, configFileStrict: true }));
  } catch (error) {
    throw fail(`temporal: ${describeLoadError(error)}`);
  }
  const { tls, apiKey } = options.connectionOptions;
  const connection: TemporalConnectionOptions = { ...options.connectionOptions, address: options.connectionOptions.address ?? defaults.address };
  const namespace = options.namespace ?? defaults.namespace;
  const mutual = typeof tls === 'object' && tls !== null && tls.clientCertPair !== undefined;
  return {
    connection,
    namespace,
    summary: {
      address: connection.address,
      namespace,
      tls: tls === undefined || tls === false || tls === null ? 'off' : mutual ? 'mutual' : 'server-verified',
      apiKey: apiKey !== undefined,
      profile: provider.TEMPORAL_PROFILE ?? null,
    },
  };
}

function describeLoadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const file = (error as NodeJS.ErrnoException | undefined)?.path;
  if (code === 'ENOENT' && file) return `cannot read ${file} (no such file)`;
  if (code === 'EACCES' && file) return `cannot read ${file} (permission denied)`;
  return error instanceof Error ? error.message : String(error);
}
