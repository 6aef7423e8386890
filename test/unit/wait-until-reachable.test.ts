import { isNotReachableYet, waitUntilReachable } from '../../src/connections/wait-until-reachable';

/** Which failed first connections the API and the worker wait out at start, and which stop them (test/deploy/api-lifecycle.test.ts runs the processes). */
describe('isNotReachableYet', () => {
  const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

  test.each([
    ['a refused connection', coded('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['Postgres starting up', coded('the database system is starting up', '57P03')],
    ['an unresolved name', coded('getaddrinfo ENOTFOUND postgres', 'ENOTFOUND')],
    [
      'a gRPC connect deadline inside a wrapper',
      new Error('temporal at t:7233 (plaintext): Failed to connect before the deadline', { cause: new Error('Failed to connect before the deadline') }),
    ],
    [
      'a TLS front that refused the connection',
      new Error('temporal at t:7233 (TLS): TLS handshake failed: connect ECONNREFUSED 127.0.0.1:7233 (ECONNREFUSED)', {
        cause: new Error('Failed to connect before the deadline'),
      }),
    ],
  ])('when the failure is %s, then it is waited out', (_what, error) => {
    expect(isNotReachableYet(error)).toBe(true);
  });

  test.each([
    ['a wrong password', coded('password authentication failed for user "vm_tenant_app"', '28P01')],
    ['a missing database', coded('database "vm_tenant" does not exist', '3D000')],
    ['an untrusted certificate', coded('unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')],
    [
      'a TLS problem named by the handshake, wrapping a connect deadline',
      new Error('temporal at t:7233 (TLS): TLS handshake failed: self-signed certificate in certificate chain', {
        cause: new Error('Failed to connect before the deadline'),
      }),
    ],
  ])('when the failure is %s, then it stops the start', (_what, error) => {
    expect(isNotReachableYet(error)).toBe(false);
  });
});

describe('waitUntilReachable', () => {
  test('when the first attempts find no server, then it retries, reports once within the cadence, and returns the first success', async () => {
    const reports: string[] = [];
    let attempts = 0;
    const result = await waitUntilReachable(
      'postgres at db:5432',
      async () => {
        attempts += 1;
        if (attempts < 4) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return 'connected';
      },
      { retryEveryMs: 5, reportEveryMs: 60_000, report: (what, cause) => reports.push(`${what}: ${cause}`) },
    );
    expect({ result, attempts, reports }).toEqual({ result: 'connected', attempts: 4, reports: ['postgres at db:5432: connect ECONNREFUSED (ECONNREFUSED)'] });
  });

  test('when the failure will not pass by waiting, then it is thrown at once', async () => {
    let attempts = 0;
    const refused = Object.assign(new Error('password authentication failed'), { code: '28P01' });
    await expect(
      waitUntilReachable(
        'postgres',
        async () => {
          attempts += 1;
          throw refused;
        },
        { retryEveryMs: 5 },
      ),
    ).rejects.toBe(refused);
    expect(attempts).toBe(1);
  });
});
