import { ConfigError, describeConfig, loadConfig } from '../../src/config/config';

const ADMIN_TOKEN = 'vmt_rtr9NFCcHzPmx13CEIQy6UDYeKiwBE3HcQ3X';

function loadError(env: Record<string, string>): Error {
  try {
    loadConfig(env);
  } catch (error) {
    return error as Error;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig', () => {
  test('when the environment is empty, then the documented defaults apply', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 9221,
      natsUrl: 'nats://127.0.0.1:4222',
      temporalAddress: '127.0.0.1:7233',
      temporalNamespace: 'default',
      temporalTaskQueue: 'vm-tenant',
      workerMaxCachedWorkflows: 1000,
      temporalCallTimeoutMs: 10_000,
      databaseStatementTimeoutMs: 5_000,
      databaseAcquireTimeoutMs: 5_000,
      adminToken: undefined,
    });
    expect(config.databaseUrl).toMatch(/^postgres:\/\//);
    expect(config.fleetUrl).toBe(`http://127.0.0.1:${config.fleetPort}`);
  });

  test('when WORKER_MAX_CACHED_WORKFLOWS is set, then the worker keeps that many workflows cached; zero or a non-number is refused', () => {
    expect(loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '250' }).workerMaxCachedWorkflows).toBe(250);
    expect(() => loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: '0' })).toThrow(/WORKER_MAX_CACHED_WORKFLOWS must be between 1 and/);
    expect(() => loadConfig({ WORKER_MAX_CACHED_WORKFLOWS: 'lots' })).toThrow(/WORKER_MAX_CACHED_WORKFLOWS/);
  });

  test('when the ledger checkpoint variables are unset, then the stream follows NATS_STREAM and the key sits in DATA_DIR; out-of-range cadences are refused', () => {
    expect(loadConfig({ NATS_STREAM: 'PROD', DATA_DIR: '/var/lib/vm-tenant' })).toMatchObject({
      ledgerCheckpointStream: 'PROD_CHECKPOINTS',
      ledgerCheckpointEveryEntries: 100,
      ledgerCheckpointEverySeconds: 10,
      ledgerCheckpointPublicKeyFile: '/var/lib/vm-tenant/ledger-checkpoint-key.pub.pem',
    });
    expect(() => loadConfig({ LEDGER_CHECKPOINT_EVERY_ENTRIES: '0' })).toThrow(/LEDGER_CHECKPOINT_EVERY_ENTRIES must be between 1 and/);
    expect(() => loadConfig({ LEDGER_CHECKPOINT_EVERY_SECONDS: '86401' })).toThrow(/LEDGER_CHECKPOINT_EVERY_SECONDS must be between 1 and 86400/);
    expect(() => loadConfig({ LEDGER_CHECKPOINT_STREAM: 'a.b' })).toThrow(/LEDGER_CHECKPOINT_STREAM must be/);
  });

  test('when the config is loaded, then it and its list members are frozen', () => {
    const config = loadConfig({ TRUSTED_PROXIES: '10.0.0.1' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.trustedProxies)).toBe(true);
    expect(() => {
      (config as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  test('when variables are set, then they are used', () => {
    const config = loadConfig({
      PORT: '8080',
      DATABASE_URL: 'postgresql://u@db:5432/x',
      ADMIN_TOKEN,
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_CALL_TIMEOUT_MS: '2500',
      DATABASE_STATEMENT_TIMEOUT_MS: '3000',
      DATABASE_ACQUIRE_TIMEOUT_MS: '1500',
    });
    expect(config).toMatchObject({ port: 8080, databaseUrl: 'postgresql://u@db:5432/x', adminToken: ADMIN_TOKEN, temporalAddress: 'temporal:7233' });
    expect(config).toMatchObject({ temporalCallTimeoutMs: 2500, databaseStatementTimeoutMs: 3000, databaseAcquireTimeoutMs: 1500 });
  });

  test.each([
    ['PORT', { PORT: 'abc' }],
    ['PORT', { PORT: '-1' }],
    ['PORT', { PORT: '70000' }],
    ['PORT', { PORT: '80.5' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['DATABASE_URL', { DATABASE_URL: 'mysql://u@h/db' }],
    ['NATS_URL', { NATS_URL: 'http://127.0.0.1:4222' }],
    ['TEMPORAL_ADDRESS', { TEMPORAL_ADDRESS: 'no-port' }],
    ['TEMPORAL_CALL_TIMEOUT_MS', { TEMPORAL_CALL_TIMEOUT_MS: '0' }],
    ['TEMPORAL_CALL_TIMEOUT_MS', { TEMPORAL_CALL_TIMEOUT_MS: '10s' }],
    ['DATABASE_STATEMENT_TIMEOUT_MS', { DATABASE_STATEMENT_TIMEOUT_MS: '50' }],
    ['DATABASE_ACQUIRE_TIMEOUT_MS', { DATABASE_ACQUIRE_TIMEOUT_MS: '-5' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'short' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'x'.repeat(31) }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'x'.repeat(40) }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'vmt_rtr9NFCcHzPmx13CEIQy6UDYeKiwBE3HcQ3Y' }],
    ['AUTH_FAILURES_PER_MINUTE', { AUTH_FAILURES_PER_MINUTE: '0' }],
  ])('when %s is invalid (%j), then loading fails with a ConfigError naming it', (variable, env) => {
    const error = loadError(env as Record<string, string>);
    expect(error.name).toBe('ConfigError');
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(new RegExp(`^${variable}\\b`));
  });

  test('when a bad variable holds a secret, then the error message does not repeat it', () => {
    expect(loadError({ ADMIN_TOKEN: 'tooShortSecret' }).message).not.toContain('tooShortSecret');
    expect(loadError({ DATABASE_URL: 'postgres//u:hunter2pw@h/db' }).message).not.toContain('hunter2pw');
  });
});

describe('describeConfig', () => {
  test('when the config holds an admin token and URL passwords, then the description contains none of them', () => {
    const config = loadConfig({
      ADMIN_TOKEN,
      DATABASE_URL: 'postgres://app:db-s3cret-pw@db.internal:5432/vm_tenant',
      MIGRATION_DATABASE_URL: 'postgres://postgres:migr-s3cret-pw@db.internal:5432/vm_tenant',
      NATS_URL: 'nats://nats-user:nats-s3cret-pw@nats.internal:4222',
      FLEET_URL: 'https://fleet:fleet-s3cret-pw@fleet.internal',
    });
    const described = JSON.stringify(describeConfig(config));
    for (const secret of [ADMIN_TOKEN, 'db-s3cret-pw', 'migr-s3cret-pw', 'nats-s3cret-pw', 'fleet-s3cret-pw']) {
      expect(described).not.toContain(secret);
    }
    expect(describeConfig(config)).toMatchObject({ port: 9221, adminToken: 'set' });
    expect(described).toContain('db.internal');
  });

  test('when the database password is given as a query parameter, then the description does not contain it', () => {
    const config = loadConfig({ DATABASE_URL: 'postgres://app@db.internal:5432/vm_tenant?password=query-s3cret-pw&sslmode=require' });
    expect(JSON.stringify(describeConfig(config))).not.toContain('query-s3cret-pw');
  });

  test('when no admin token is set, then the description says it is generated', () => {
    expect(describeConfig(loadConfig({})).adminToken).toBe('generated');
  });
});
