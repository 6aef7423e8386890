import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export type TestCertificates = Record<'ca' | 'otherCa' | 'serverCert' | 'serverKey' | 'clientCert' | 'clientKey', string>;

/**
 * Files in `dir` (openssl, P-256, valid one day): a CA, a server certificate it signed for
 * `serverAltNames` (an X.509 subjectAltName value, e.g. `IP:127.0.0.1,DNS:localhost`), a client
 * certificate it signed, and an unrelated CA that signed neither.
 */
export function generateCertificates(dir: string, serverAltNames: string): TestCertificates {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=vm-tenant test CA');
  openssl('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '1', '-subj', '/CN=some other CA');
  const issue = (name: string, extensions: string) => {
    writeFileSync(path.join(dir, `${name}.ext`), extensions);
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  };
  issue('server', `subjectAltName=${serverAltNames}\nextendedKeyUsage=serverAuth\n`);
  issue('client', 'extendedKeyUsage=clientAuth\n');
  const at = (file: string) => path.join(dir, file);
  return {
    ca: at('ca.pem'),
    otherCa: at('other-ca.pem'),
    serverCert: at('server.pem'),
    serverKey: at('server.key'),
    clientCert: at('client.pem'),
    clientKey: at('client.key'),
  };
}
