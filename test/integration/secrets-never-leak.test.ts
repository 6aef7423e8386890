/**
 * No token, token hash or secret ever reaches a log line, an error body, a NATS payload or a
 * workflow history, input, memo or search attribute (issue 4, section 3).
 *
 * The test issues tokens, uses them for the whole VM lifecycle and for every kind of refusal —
 * including 401s with the secret in the wrong place (body, query, other headers) — and then greps
 * everything the system wrote or answered for each secret and its SHA-256 hex.
 */
import { createHash, randomUUID } from 'node:crypto';
import { connect, type NatsConnection, type NatsError } from 'nats';
import { toLifecycleEvent } from '../../src/events/event-payload';
import { testEnv } from '../helpers/test-env';
import { createTenant, eventually, SAMPLE_PUBKEY, SMALL_VM, startTestStack, type ApiResponse, type TestStack } from '../helpers/test-stack';

// Generous: a loaded 2-core machine runs Temporal, Postgres, NATS and two Jest workers at once.
jest.setTimeout(180_000);
const SETTLE_MS = 60_000;
/** JetStream's API error code for a stream that does not exist. */
const STREAM_NOT_FOUND = 10059;

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

/**
 * Anything as JSON text, with byte arrays (Temporal payloads) decoded to their UTF-8 text first, so
 * that what they carry is greppable. (JSON.stringify alone would show protobuf bytes as base64.)
 */
function dump(value: unknown): string {
  const plain = (v: unknown): unknown => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
    if (Array.isArray(v)) return v.map(plain);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, plain(inner)]));
    return typeof v === 'bigint' ? v.toString() : v;
  };
  return JSON.stringify(plain(value));
}

describe('secrets never leak', () => {
  let stack: TestStack;
  let nc: NatsConnection;
  let tenantId: string;
  /** Every secret the test handles, by a label for the failure message. */
  const secrets = new Map<string, string>();
  /** The raw text of every error answer the API gave. */
  const errorBodies: string[] = [];

  /** Sends a request and keeps the text of every error answer. */
  async function call(method: string, path: string, options: Parameters<TestStack['request']>[2] = {}): Promise<ApiResponse> {
    const res = await stack.request(method, path, options);
    if (res.status >= 400) errorBodies.push(typeof res.body === 'string' ? res.body : JSON.stringify(res.body));
    return res;
  }

  async function issue(token: string, scope: string): Promise<{ token: string; token_id: string }> {
    const res = await call('POST', `/v1/tenants/${tenantId}/tokens`, { token, body: { subject_pubkey: SAMPLE_PUBKEY, scope, expires_in_seconds: 1200 } });
    expect(res.status).toBe(201);
    secrets.set(`${scope} token ${res.body.token_id}`, res.body.token);
    return res.body;
  }

  beforeAll(async () => {
    stack = await startTestStack();
    nc = await connect({ servers: stack.config.natsUrl, name: 'secrets-never-leak-test' });
  });
  afterAll(async () => {
    await stack?.close();
    await (await nc?.jetstreamManager())?.streams.delete(stack.config.natsStream).catch(() => undefined);
    await nc?.drain();
  });

  test('when tokens are issued, used, misused and revoked, then no secret or hash appears in logs, error bodies, NATS events or workflow histories', async () => {
    // --- Arrange: a tenant with a one-VM quota, so a second spawn is refused by the workflow.
    const tenant = await createTenant(stack, { max_vms: 1 });
    tenantId = tenant.tenantId;
    const other = await createTenant(stack);
    secrets.set('platform admin token', stack.adminToken);
    secrets.set('tenant-admin token', tenant.token);
    secrets.set('other tenant token', other.token);
    const writer = await issue(tenant.token, 'vm:write');
    const reader = await issue(tenant.token, 'vm:read');
    const auditor = await issue(tenant.token, 'audit:read');
    const doomed = await issue(tenant.token, 'vm:write');

    // --- Act: the whole VM lifecycle with the tokens.
    const spawned = await call('POST', '/v1/vms', {
      token: writer.token,
      body: { ...SMALL_VM, name: 'secret-test' },
      headers: { 'Idempotency-Key': randomUUID() },
    });
    expect(spawned.status).toBe(202);
    const vmId: string = spawned.body.vm_id;
    await eventually(async () => (await call('GET', `/v1/vms/${vmId}`, { token: reader.token })).body.status === 'running', SETTLE_MS, 'VM running');
    const overQuota = await call('POST', '/v1/vms', { token: writer.token, body: SMALL_VM });
    expect(overQuota.status).toBe(429);
    expect((await call('GET', '/v1/audit', { token: auditor.token })).status).toBe(200);
    expect((await call('DELETE', `/v1/vms/${vmId}`, { token: writer.token })).status).toBe(202);
    await eventually(async () => (await call('GET', `/v1/vms/${vmId}`, { token: reader.token })).body.status === 'destroyed', SETTLE_MS, 'VM destroyed');

    // Refusals made with valid tokens: bad bodies, wrong scope, another tenant's objects.
    expect((await call('POST', '/v1/vms', { token: writer.token, body: { ...SMALL_VM, vcpus: -1 } })).status).toBe(400);
    expect((await call('POST', '/v1/vms', { token: writer.token, body: { ...SMALL_VM, token: writer.token } })).status).toBe(400);
    expect((await call('POST', '/v1/vms', { token: writer.token, body: { ...SMALL_VM, image: writer.token } })).status).toBe(400);
    expect(
      (await call('POST', '/v1/vms', { token: writer.token, rawBody: `{"token":"${writer.token}"`, headers: { 'content-type': 'application/json' } })).status,
    ).toBe(400);
    expect((await call('POST', '/v1/vms', { token: reader.token, body: SMALL_VM })).status).toBe(403);
    expect((await call('GET', `/v1/vms/${vmId}`, { token: other.token })).status).toBe(404);
    expect((await call('GET', `/v1/tenants/${tenantId}`, { token: other.token })).status).toBe(404);
    expect(
      (await call('POST', `/v1/tenants/${tenantId}/tokens`, { token: writer.token, body: { subject_pubkey: SAMPLE_PUBKEY, scope: 'service:tenant-admin' } }))
        .status,
    ).toBe(403);

    // Revocation, then the revoked secret used again.
    expect((await call('DELETE', `/v1/tenants/${tenantId}/tokens/${doomed.token_id}`, { token: tenant.token })).status).toBe(200);
    expect((await call('GET', '/v1/vms', { token: doomed.token })).status).toBe(401);

    // 401s with the secret in the wrong place.
    const misplaced: [string, Parameters<TestStack['request']>[2]][] = [
      [`/v1/vms?token=${writer.token}`, {}],
      [`/v1/vms?access_token=${writer.token}&api_key=${sha256(writer.token)}`, {}],
      ['/v1/vms', { headers: { 'X-Api-Key': writer.token } }],
      ['/v1/vms', { headers: { Authorization: `Basic ${Buffer.from(`x:${writer.token}`).toString('base64')}` } }],
      ['/v1/vms', { headers: { Authorization: `Token ${writer.token}` } }],
      ['/v1/vms', { headers: { Authorization: `Bearer ${writer.token}x` } }],
      ['/v1/vms', { headers: { Authorization: `Bearer ${writer.token.slice(0, -1)}${writer.token.endsWith('0') ? '1' : '0'}` } }],
      ['/v1/vms', { headers: { Authorization: `Bearer ${sha256(writer.token)}` } }],
      ['/v1/vms', { headers: { Cookie: `token=${writer.token}` } }],
    ];
    for (const [path, options] of misplaced) expect((await call('GET', path, options)).status).toBe(401);
    const inBody = await call('POST', '/v1/vms', { body: { ...SMALL_VM, token: writer.token, authorization: `Bearer ${writer.token}` } });
    expect(inBody.status).toBe(401);

    // --- Assert: grep everything for every secret and its hash.
    const needles = [...secrets].flatMap(([label, secret]) => [
      { label, needle: secret },
      { label: `${label} (sha256)`, needle: sha256(secret) },
    ]);
    const haystacks: { source: string; text: string }[] = [];

    expect(stack.logLines.length).toBeGreaterThan(0);
    haystacks.push({ source: 'log lines of API and worker', text: stack.logLines.join('\n') });
    expect(errorBodies.length).toBeGreaterThan(15);
    haystacks.push({ source: 'error bodies', text: errorBodies.join('\n') });

    // The ledger rows of the tenants are what the relay publishes, one NATS event each.
    const rows = await stack.db.selectFrom('audit_events').selectAll().where('tenant_id', 'in', [tenantId, other.tenantId]).orderBy('seq').execute();
    expect(rows.length).toBeGreaterThan(5);
    haystacks.push({ source: 'NATS payloads of the tenants\u2019 ledger entries', text: dump(rows.map(toLifecycleEvent)) });

    // NATS: every message on this run's streams. One relay leads per database, so this run's
    // events may sit on another test file's stream; wait (bounded) until the last one is out.
    const lastEventId = rows[rows.length - 1]!.event_id;
    const runStreams = async () => {
      const jsm = await nc.jetstreamManager();
      const names: string[] = [];
      for await (const name of jsm.streams.names()) if (name === stack.config.natsStream || name.includes(testEnv().testRunId.toUpperCase())) names.push(name);
      return names;
    };
    const readAll = async (): Promise<{ texts: string[]; eventIds: Set<string> }> => {
      const jsm = await nc.jetstreamManager();
      const texts: string[] = [];
      const eventIds = new Set<string>();
      for (const name of await runStreams()) {
        try {
          const info = await jsm.streams.info(name).catch(() => null);
          if (!info || info.state.messages === 0) continue;
          const consumer = await nc.jetstream().consumers.get(name);
          for (;;) {
            const m = await consumer.next({ expires: 2000 });
            if (!m) break;
            texts.push(`${m.subject} ${m.headers ? dump([...m.headers.keys()].map((k) => [k, m.headers!.values(k)])) : ''} ${m.string()}`);
            const eventId = m.json<{ event_id?: string }>().event_id;
            if (eventId) eventIds.add(eventId);
            if (m.seq >= info.state.last_seq || m.info.pending === 0) break;
          }
        } catch (error) {
          // Another test file's stack deleted its stream (at its close) while this one read it.
          if ((error as NatsError).api_error?.err_code === STREAM_NOT_FOUND) continue;
          throw error;
        }
      }
      return { texts, eventIds };
    };
    let nats = await readAll();
    await eventually(
      async () => (nats = await readAll()).eventIds.has(lastEventId),
      30_000,
      'the tenant\u2019s last ledger entry on a NATS stream of this run',
    ).catch(() => undefined);
    haystacks.push({ source: 'NATS messages of this run', text: nats.texts.join('\n') });

    // Temporal: every run of the tenant's workflows (found by their TenantId search attribute).
    const histories: string[] = [];
    for (const id of [tenantId, other.tenantId]) {
      const runs = await eventually(
        async () => {
          const found = [];
          for await (const wf of stack.temporal.workflow.list({ query: `TenantId="${id}"` })) found.push(wf);
          return found.length > 0 ? found : undefined;
        },
        SETTLE_MS,
        `workflows of ${id} visible`,
      );
      for (const wf of runs) {
        const handle = stack.temporal.workflow.getHandle(wf.workflowId, wf.runId);
        const described = await handle.describe();
        histories.push(dump({ memo: wf.memo, searchAttributes: wf.searchAttributes, typed: wf.typedSearchAttributes, describedMemo: described.memo }));
        histories.push(dump(await handle.fetchHistory()));
      }
    }
    // Positive controls: the greps look at decoded content that does carry the requests' details.
    expect(histories.join('')).toContain('secret-test');
    expect(stack.logLines.join('\n')).toContain(writer.token_id);
    expect(dump(rows.map(toLifecycleEvent))).toContain(writer.token_id);
    expect(errorBodies.join('\n')).toContain('invalid_token');
    haystacks.push({ source: 'workflow histories, memos and search attributes', text: histories.join('\n') });

    const found = haystacks.flatMap(({ source, text }) => needles.filter(({ needle }) => text.includes(needle)).map(({ label }) => `${label} in ${source}`));
    expect(found).toEqual([]);
  });
});
