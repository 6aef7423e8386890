import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, loadConfig } from '../../src/config/config';

describe('Postgres URLs with TLS settings', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'vm-tenant-pg-url-'));
  const [ca, otherCa] = ['root.crt', 'other-root.crt'].map((name) => path.join(dir, name)) as [string, string];
  for (const file of [ca, otherCa]) writeFileSync(file, 'x');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('when the URL names sslmode=verify-full and sslrootcert, then it is used as given', () => {
    const url = `postgres://vm_tenant_app:pw@db.example:5432/vm_tenant?sslmode=verify-full&sslrootcert=${ca}`;
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
  });

  test('when PGSSLROOTCERT is set and the URL names no CA, then both URLs get it as sslrootcert (pg reads no PGSSL* file variable itself)', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://app@db.example/vm_tenant?sslmode=verify-full',
      MIGRATION_DATABASE_URL: 'postgres://owner@db.example/vm_tenant?sslmode=verify-full',
      PGSSLROOTCERT: ca,
    });
    for (const url of [config.databaseUrl, config.migrationDatabaseUrl]) {
      expect(Object.fromEntries(new URL(url).searchParams)).toEqual({ sslmode: 'verify-full', sslrootcert: ca });
    }
    expect(String(describeConfig(config).databaseUrl)).toContain('sslmode=verify-full');
  });

  test('when the URL names its own CA or says sslmode=disable, then PGSSLROOTCERT does not override it', () => {
    const own = `postgres://app@db.example/vm_tenant?sslmode=verify-full&sslrootcert=${ca}`;
    expect(loadConfig({ DATABASE_URL: own, PGSSLROOTCERT: otherCa }).databaseUrl).toBe(own);
    const plain = 'postgres://app@127.0.0.1/vm_tenant?sslmode=disable';
    expect(loadConfig({ DATABASE_URL: plain, PGSSLROOTCERT: ca }).databaseUrl).toBe(plain);
  });

  test('when the CA file cannot be read, then the start stops naming where it came from', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://app@db/vm_tenant?sslmode=verify-full&sslrootcert=/nowhere/root.crt' })).toThrow(
      new ConfigError('DATABASE_URL sslrootcert: cannot read /nowhere/root.crt (no such file)'),
    );
    expect(() => loadConfig({ PGSSLROOTCERT: '/nowhere/root.crt' })).toThrow(new ConfigError('PGSSLROOTCERT: cannot read /nowhere/root.crt (no such file)'));
  });
});
