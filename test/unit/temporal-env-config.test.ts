import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, loadConfig } from '../../src/config/config';

/** The mapping from Temporal's environment configuration (TEMPORAL_* and profile files) to connection options. */
describe('Temporal environment configuration', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-envconfig-'));
  const file = (name: string, text: string) => {
    const target = path.join(dir, name);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
    return target;
  };
  const ca = file('ca.pem', 'CA-PEM');
  const cert = file('client.pem', 'CLIENT-CERT-PEM');
  const key = file('client.key', 'CLIENT-KEY-PEM');
  /** No HOME: no default profile file from the machine running the tests. */
  const load = (env: Record<string, string>) => loadConfig(env);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('when nothing is set, then it connects in plaintext to 127.0.0.1:7233, namespace default', () => {
    const config = load({});
    expect(config.temporal.connection).toEqual({ address: '127.0.0.1:7233', apiKey: undefined, tls: undefined, metadata: undefined });
    expect(config.temporalNamespace).toBe('default');
    expect(config.temporal.summary).toEqual({ address: '127.0.0.1:7233', namespace: 'default', tls: 'off', apiKey: false, profile: null });
  });

  test('when only TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE are set, then they work as before', () => {
    const config = load({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_NAMESPACE: 'vm-tenant' });
    expect(config.temporalAddress).toBe('temporal:7233');
    expect(config.temporalNamespace).toBe('vm-tenant');
    expect(config.temporal.connection).toMatchObject({ address: 'temporal:7233', tls: undefined });
  });

  test('when an API key is set (Temporal Cloud), then it is sent and TLS is on', () => {
    const config = load({ TEMPORAL_ADDRESS: 'eu-west-1.aws.api.temporal.io:7233', TEMPORAL_NAMESPACE: 'acme.a1b2c', TEMPORAL_API_KEY: 'key-123' });
    expect(config.temporal.connection).toMatchObject({ address: 'eu-west-1.aws.api.temporal.io:7233', apiKey: 'key-123', tls: true });
    expect(config.temporal.summary).toMatchObject({ tls: 'server-verified', apiKey: true });
  });

  test('when mTLS files and a server name are set, then the client presents the pair and verifies the server against the CA under that name', () => {
    const config = load({
      TEMPORAL_ADDRESS: 'temporal.internal:7233',
      TEMPORAL_TLS_CLIENT_CERT_PATH: cert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: key,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'frontend.temporal',
    });
    const tls = config.temporal.connection.tls as {
      serverNameOverride?: string;
      serverRootCACertificate?: Uint8Array;
      clientCertPair?: { crt: Uint8Array; key: Uint8Array };
    };
    expect(tls.serverNameOverride).toBe('frontend.temporal');
    const text = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString() : undefined);
    expect(text(tls.serverRootCACertificate)).toBe('CA-PEM');
    expect(text(tls.clientCertPair?.crt)).toBe('CLIENT-CERT-PEM');
    expect(text(tls.clientCertPair?.key)).toBe('CLIENT-KEY-PEM');
    expect(config.temporal.summary.tls).toBe('mutual');
  });

  test('when TEMPORAL_TLS is false, then TLS stays off even with a server name set', () => {
    expect(load({ TEMPORAL_TLS: 'false', TEMPORAL_TLS_SERVER_NAME: 'x' }).temporal.connection.tls).toBe(false);
  });

  test('when a profile file and TEMPORAL_PROFILE are set, then the profile applies and TEMPORAL_* variables override it', () => {
    const toml = file(
      'profiles.toml',
      [
        '[profile.default]',
        'address = "localhost:7233"',
        '',
        '[profile.prod]',
        'address = "prod.tmprl.cloud:7233"',
        'namespace = "prod-ns"',
        'api_key = "from-file"',
        '[profile.prod.tls]',
        'server_name = "prod.tmprl.cloud"',
        '[profile.prod.grpc_meta]',
        'x-team = "vm"',
      ].join('\n'),
    );
    const config = load({ TEMPORAL_CONFIG_FILE: toml, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'override-ns' });
    expect(config.temporal.connection).toMatchObject({
      address: 'prod.tmprl.cloud:7233',
      apiKey: 'from-file',
      tls: { serverNameOverride: 'prod.tmprl.cloud' },
      metadata: { 'x-team': 'vm' },
    });
    expect(config.temporalNamespace).toBe('override-ns');
    expect(config.temporal.summary.profile).toBe('prod');
  });

  test('when the Temporal CLI’s default file exists under XDG_CONFIG_HOME, then its default profile applies', () => {
    const configHome = path.join(dir, 'xdg');
    file('xdg/temporalio/temporal.toml', '[profile.default]\naddress = "cli-default:7233"\nnamespace = "cli-ns"\n');
    expect(load({ XDG_CONFIG_HOME: configHome }).temporal.summary).toMatchObject({ address: 'cli-default:7233', namespace: 'cli-ns' });
  });

  test('when TEMPORAL_GRPC_META_* is set, then it becomes gRPC metadata', () => {
    expect(load({ TEMPORAL_GRPC_META_X_TENANT_PLANE: 'eu' }).temporal.connection.metadata).toEqual({ 'x-tenant-plane': 'eu' });
  });

  test.each([
    [
      'a certificate file that does not exist',
      { TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent/client.pem', TEMPORAL_TLS_CLIENT_KEY_PATH: '/nonexistent/client.key' },
      /^temporal: cannot read \/nonexistent\/client\.(pem|key) \(no such file\)$/,
    ],
    ['a profile that is not in the file', { TEMPORAL_CONFIG_FILE: '', TEMPORAL_PROFILE: 'missing' }, /^temporal: Profile 'missing' not found/],
    [
      'a config file that does not exist',
      { TEMPORAL_CONFIG_FILE: '/nonexistent/temporal.toml' },
      /^temporal: TEMPORAL_CONFIG_FILE \/nonexistent\/temporal\.toml does not exist$/,
    ],
    ['an address without a port', { TEMPORAL_ADDRESS: 'no-port' }, /^TEMPORAL_ADDRESS must be host:port/],
  ])('when given %s, then the start stops with a ConfigError naming temporal and the cause', (_what, given, message) => {
    const env = given as Record<string, string>;
    const withFile = {
      ...env,
      TEMPORAL_CONFIG_FILE: env.TEMPORAL_CONFIG_FILE === '' ? file('default-only.toml', '[profile.default]\naddress = "a:7233"\n') : env.TEMPORAL_CONFIG_FILE,
    };
    const attempt = () => load(Object.fromEntries(Object.entries(withFile).filter(([, value]) => value !== undefined)) as Record<string, string>);
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(message);
  });

  test('when the configuration is logged, then the API key and certificates are not in it', () => {
    const config = load({ TEMPORAL_API_KEY: 'secret-api-key', TEMPORAL_TLS_CLIENT_CERT_PATH: cert, TEMPORAL_TLS_CLIENT_KEY_PATH: key });
    const logged = JSON.stringify(describeConfig(config));
    expect(logged).not.toContain('secret-api-key');
    expect(logged).not.toContain('CLIENT-KEY-PEM');
    expect(JSON.parse(logged).temporal).toEqual({ address: '127.0.0.1:7233', namespace: 'default', tls: 'mutual', apiKey: true, profile: null });
  });
});
