/**
 * The start-up check of `npm start`, the test setup and the benchmark (src/devstack/service-checks.ts):
 * a developer whose Postgres or NATS is down is told which, and how to start it, without the login's
 * password ever being printed.
 */
import { checkServices, ServiceUnavailableError, START_NATS_COMMAND, START_POSTGRES_COMMAND } from '../../src/devstack/service-checks';
import { getFreePort } from '../../src/devstack/free-port';
import { testEnv } from '../helpers/test-env';

test('when Postgres and NATS both answer, then the check passes', async () => {
  const env = testEnv();
  await expect(checkServices({ postgresUrl: env.migrationDatabaseUrl, natsUrl: env.natsUrl })).resolves.toBeUndefined();
});

test('when neither answers, then one error names both, says how to start each, and shows no password', async () => {
  const [pgPort, natsPort] = [await getFreePort(), await getFreePort()];
  const failure = await checkServices({
    postgresUrl: `postgres://app:pg-s3cret@127.0.0.1:${pgPort}/vm_tenant?password=query-s3cret`,
    natsUrl: `nats://app:nats-s3cret@127.0.0.1:${natsPort}`,
  }).catch((error: unknown) => error);

  expect(failure).toBeInstanceOf(ServiceUnavailableError);
  const { services, message } = failure as ServiceUnavailableError;
  expect(services).toEqual(['postgres', 'nats']);
  expect(message).toContain(`PostgreSQL is not reachable at postgres://app:***@127.0.0.1:${pgPort}/vm_tenant?password=***`);
  expect(message).toContain(`NATS is not reachable at nats://app:***@127.0.0.1:${natsPort}`);
  expect(message).toMatch(/ECONNREFUSED/);
  expect(message).toContain(START_POSTGRES_COMMAND);
  expect(message).toContain(START_NATS_COMMAND);
  expect(message).not.toMatch(/s3cret/);
});
