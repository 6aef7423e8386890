import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { natsConnectOptions } from '../../src/events/nats-connection';

describe('NATS credentials and TLS from the environment', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-nats-env-'));
  const file = (name: string) => {
    const at = path.join(dir, name);
    writeFileSync(at, 'x');
    return at;
  };
  const [creds, ca, cert, key] = ['app.creds', 'ca.pem', 'client.pem', 'client.key'].map(file) as [string, string, string, string];
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('when only NATS_URL is set, then the settings carry the URL alone and no TLS is required', () => {
    const { nats } = loadConfig({ NATS_URL: 'nats://127.0.0.1:4222' });
    expect(nats).toEqual({ url: 'nats://127.0.0.1:4222', credsFile: undefined, tls: undefined });
    expect(natsConnectOptions(nats)).toEqual({ servers: 'nats://127.0.0.1:4222' });
  });

  test('when NATS_URL lists the servers of a cluster, then each is a server to try, with the one login, and two different logins are refused', () => {
    const { nats, natsUrl } = loadConfig({ NATS_URL: 'nats://u:p@n0:4222, nats://n1:4222,tls://n2:4222' });
    expect(natsUrl).toBe('nats://u:p@n0:4222,nats://n1:4222,tls://n2:4222');
    expect(natsConnectOptions(nats)).toEqual({ servers: ['nats://n0:4222', 'nats://n1:4222', 'tls://n2:4222'], user: 'u', pass: 'p', tls: {} });
    expect(() => loadConfig({ NATS_URL: 'nats://u:p@n0:4222,nats://v:q@n1:4222' })).toThrow(/different logins/);
    expect(() => loadConfig({ NATS_URL: 'nats://n0:4222,n1' })).toThrow(ConfigError);
    expect(() => loadConfig({ NATS_URL: 'nats://n0:4222,http://n1:4222' })).toThrow(/must use nats: or tls:/);
  });

  test('when the creds file, CA and client pair are set, then the connect options authenticate with the file and require TLS with those files', () => {
    const { nats } = loadConfig({
      NATS_URL: 'tls://nats.example:4222',
      NATS_CREDS_FILE: creds,
      NATS_TLS_CA_FILE: ca,
      NATS_TLS_CERT_FILE: cert,
      NATS_TLS_KEY_FILE: key,
    });
    expect(nats).toEqual({ url: 'tls://nats.example:4222', credsFile: creds, tls: { caFile: ca, certFile: cert, keyFile: key } });
    const options = natsConnectOptions(nats);
    expect(options).toMatchObject({ servers: 'tls://nats.example:4222', tls: { caFile: ca, certFile: cert, keyFile: key } });
    expect(typeof options.authenticator).toBe('function');
  });

  test('when the URL says tls:// without files, or carries a login next to a CA, then TLS is required and the login is passed on', () => {
    expect(natsConnectOptions(loadConfig({ NATS_URL: 'tls://nats.example:4222' }).nats)).toEqual({ servers: 'tls://nats.example:4222', tls: {} });
    const withLogin = natsConnectOptions(loadConfig({ NATS_URL: 'nats://vm_tenant:p%40ss@nats.example:4222', NATS_TLS_CA_FILE: ca }).nats);
    expect(withLogin).toMatchObject({ servers: 'nats://nats.example:4222', user: 'vm_tenant', pass: 'p@ss', tls: { caFile: ca } });
  });

  test.each([
    [{ NATS_CREDS_FILE: path.join(dir, 'missing.creds') }, /^NATS_CREDS_FILE: cannot read .*missing\.creds \(no such file\)$/],
    [{ NATS_TLS_CA_FILE: path.join(dir, 'missing.pem') }, /^NATS_TLS_CA_FILE: cannot read .*missing\.pem \(no such file\)$/],
    [{ NATS_TLS_CERT_FILE: cert }, /NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together/],
    [{ NATS_TLS_KEY_FILE: key }, /NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE go together/],
    [{ NATS_URL: 'nats://u:p@127.0.0.1:4222', NATS_CREDS_FILE: creds }, /NATS_CREDS_FILE and a login in NATS_URL are two credentials/],
  ])('when %j, then the start stops naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
