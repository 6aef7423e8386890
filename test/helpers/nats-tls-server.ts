import { setTimeout as sleep } from 'node:timers/promises';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds } from '@nats-io/jwt';
import { connect, credsAuthenticator } from 'nats';
import { spawnManaged, type ManagedChild } from '../../src/devstack/child-process';
import { getFreePort } from '../../src/devstack/free-port';
import type { TestCertificates } from './test-certificates';

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';

export interface NatsTlsServer {
  /** `tls://127.0.0.1:<port>` */
  readonly url: string;
  /** A user of the server's account: JWT and NKEY seed, as `nsc generate creds` writes them. */
  readonly credsFile: string;
  /** A well-formed credentials file of an account the server does not know. */
  readonly strangerCredsFile: string;
  output(): string;
  stop(): Promise<void>;
}

const NO_LIMITS = { conn: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, leaf: -1, wildcards: true };
const JETSTREAM = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

/** An account JWT without limits (the jwt library's defaults allow no connection), JetStream on or off. */
async function account(name: string, operator: ReturnType<typeof createOperator>, jetstream: boolean) {
  const keys = createAccount();
  return { account: keys, jwt: await encodeAccount(name, keys, { limits: { ...NO_LIMITS, ...(jetstream ? JETSTREAM : {}) } }, { signer: operator }) };
}

async function userCreds(account: ReturnType<typeof createAccount>): Promise<Uint8Array> {
  const user = createUser();
  return fmtCreds(await encodeUser('vm-tenant', user, account), user);
}

/**
 * A nats-server with JetStream that requires TLS (the server certificate of `certs`) and authorizes
 * by JWT in operator mode: an operator, a system account and one application account, all
 * generated here with NATS's jwt library (what `nsc` does) and preloaded into a memory resolver.
 */
export async function startNatsTlsServer(dir: string, certs: TestCertificates): Promise<NatsTlsServer> {
  const operator = createOperator();
  const system = await account('SYS', operator, false); // the server refuses JetStream on the system account
  const app = await account('VM_TENANT', operator, true);
  const stranger = await account('STRANGER', createOperator(), true);
  const port = await getFreePort();
  const file = (name: string) => path.join(dir, name);
  mkdirSync(file('jetstream'));
  writeFileSync(file('operator.jwt'), await encodeOperator('TEST', operator, { system_account: system.account.getPublicKey() }));
  writeFileSync(file('app.creds'), await userCreds(app.account));
  writeFileSync(file('stranger.creds'), await userCreds(stranger.account));
  writeFileSync(
    file('nats.conf'),
    [
      `host: 127.0.0.1`,
      `port: ${port}`,
      `tls { cert_file: "${certs.serverCert}", key_file: "${certs.serverKey}", timeout: 2 }`,
      `jetstream { store_dir: "${file('jetstream')}" }`,
      `operator: "${file('operator.jwt')}"`,
      `system_account: ${system.account.getPublicKey()}`,
      'resolver: MEMORY',
      `resolver_preload { ${system.account.getPublicKey()}: ${system.jwt}, ${app.account.getPublicKey()}: ${app.jwt} }`,
    ].join('\n'),
  );
  const lines: string[] = [];
  const server: ManagedChild = spawnManaged('nats-tls', NATS_SERVER, ['-c', file('nats.conf')], { onLine: (line) => lines.push(line) });
  const url = `tls://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    const probe = await connect({
      servers: url,
      tls: { caFile: certs.ca },
      authenticator: credsAuthenticator(await userCreds(app.account)),
      reconnect: false,
    }).catch(() => null);
    if (probe) {
      await probe.close();
      break;
    }
    if (server.hasExited() || Date.now() > deadline) {
      await server.stop(5_000);
      throw new Error(`nats-server with TLS did not start:\n${lines.join('\n')}`);
    }
    await sleep(100);
  }
  return {
    url,
    credsFile: file('app.creds'),
    strangerCredsFile: file('stranger.creds'),
    output: () => lines.join('\n'),
    stop: async () => void (await server.stop(10_000)),
  };
}
