import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { context, trace } from '@opentelemetry/api';
import { connect, type NatsConnection } from 'nats';
import { randomUUID } from 'node:crypto';
import { LedgerWriter } from '../../src/ledger/ledger-writer';
import { createLogger } from '../../src/logging/logger';
import { startHousekeeping } from '../../src/workers/housekeeping';
import { flushTracing, FLUSH_WAIT_MS } from '../../src/telemetry/tracing';
import { tenantWorkflowId } from '../../src/shared/tenant-id';
import { replayLiveRuns } from '../helpers/replay-live';
import { subjectFor } from '../../src/shared/event-subjects';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

/**
 * Traces across every hop (issue 22, docs/tracing.md): a spawn through the real stack (API, Temporal,
 * worker, fleet simulator, Postgres, NATS) with tracing configured only by the OTEL_* variables,
 * exported over OTLP/HTTP (JSON) to a receiver this file runs. One trace holds the API's server span,
 * the update-with-start, the workflow's update handler, the boot activity, the fleet call and the
 * publish of the VM's events, each span's parent the one before it; the trace context reaches the
 * fleet (traceparent header) and the NATS messages (their headers), and the logs carry the trace id.
 */
jest.setTimeout(180_000);

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}

const SPAN_KIND = { server: 2, client: 3, producer: 4 };

/** An OTLP/HTTP receiver (JSON): every span of every POST /v1/traces, with its service. */
async function startReceiver(): Promise<{ server: Server; url: string; spans: Array<OtlpSpan & { service: string }>; blackHole: { on: boolean } }> {
  const spans: Array<OtlpSpan & { service: string }> = [];
  // On: a collector that takes the connection and never answers.
  const blackHole = { on: false };
  const server = createServer((req, res) => {
    if (blackHole.on) return;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        for (const resourceSpans of body.resourceSpans ?? []) {
          const service = resourceSpans.resource?.attributes?.find((a: any) => a.key === 'service.name')?.value?.stringValue ?? '';
          for (const scope of resourceSpans.scopeSpans ?? []) for (const span of scope.spans ?? []) spans.push({ ...span, service });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, blackHole };
}

/** A pass-through to the fleet simulator that keeps the headers of every request it forwards. */
async function startRecordingProxy(): Promise<{
  server: Server;
  url: string;
  target: { url: string };
  seen: Array<{ method: string; path: string; headers: IncomingHttpHeaders }>;
}> {
  const seen: Array<{ method: string; path: string; headers: IncomingHttpHeaders }> = [];
  const target = { url: '' };
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    const upstream = httpRequest(`${target.url}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, target, seen };
}

const closeServer = (server: Server | undefined) =>
  new Promise<void>((resolve) => {
    if (!server) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });

describe('one trace per spawn, across every hop', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let stack: TestStack;
  let nc: NatsConnection;
  const saved = { ...process.env };

  beforeAll(async () => {
    receiver = await startReceiver();
    proxy = await startRecordingProxy();
    // Only the standard variables: buildApi and buildWorker start tracing from them.
    Object.assign(process.env, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'vm-tenant-tracing-test',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    // The worker's fleet calls go through the recording proxy, to the stack's simulator (known once it runs).
    stack = await startTestStack({ configOverrides: { FLEET_URL: proxy.url } });
    proxy.target.url = stack.fleet.url;
    nc = await connect({ servers: stack.config.natsUrl });
  });

  afterAll(async () => {
    await nc?.close();
    await stack?.close();
    await closeServer(proxy?.server);
    await closeServer(receiver?.server);
    process.env = saved;
  });

  test('when a tenant spawns a VM, then one trace holds the request, the update, the workflow, the boot activity, the fleet call and the event publish, each the child of the one before', async () => {
    const { token, tenantId } = await createTenant(stack);
    const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
    expect(spawned.status).toBe(202);
    const vmId: string = spawned.body.vm_id;
    await eventually(async () => (await stack.request('GET', `/v1/vms/${vmId}`, { token })).body.status === 'running', 60_000, 'the VM to run');

    const server = await eventually(
      async () => receiver.spans.find((s) => s.name === 'POST /v1/vms' && s.kind === SPAN_KIND.server),
      30_000,
      'the server span',
    );
    const inTrace = () => receiver.spans.filter((s) => s.traceId === server.traceId);
    const named = (name: string) => inTrace().find((s) => s.name === name);
    const expected = [
      'UpdateWithStartWorkflow:spawnVm',
      'HandleUpdate:spawnVm',
      'StartActivity:bootVm',
      'RunActivity:bootVm',
      'POST /v1/vms',
      'publish VM_SPAWN_REQUESTED',
      'publish VM_RUNNING',
    ];
    await eventually(
      async () => expected.every((name) => inTrace().some((s) => s.name === name && s !== server)),
      30_000,
      `the spans ${expected.join(', ')} in the trace`,
    );

    const updateWithStart = named('UpdateWithStartWorkflow:spawnVm')!;
    const handleUpdate = named('HandleUpdate:spawnVm')!;
    const startActivity = named('StartActivity:bootVm')!;
    const runActivity = named('RunActivity:bootVm')!;
    const fleetCall = inTrace().find((s) => s.name === 'POST /v1/vms' && s.kind === SPAN_KIND.client)!;
    const publishRequested = named('publish VM_SPAWN_REQUESTED')!;
    const publishRunning = named('publish VM_RUNNING')!;
    // The request is the trace's root; each hop is the child of the one that caused it.
    expect(server.parentSpanId ?? '').toBe('');
    expect(updateWithStart.parentSpanId).toBe(server.spanId);
    expect(handleUpdate.parentSpanId).toBe(updateWithStart.spanId);
    expect(startActivity.parentSpanId).toBe(handleUpdate.spanId);
    expect(runActivity.parentSpanId).toBe(startActivity.spanId);
    expect(fleetCall.parentSpanId).toBe(runActivity.spanId);
    expect(publishRunning.parentSpanId).toBe(runActivity.spanId);
    expect(publishRequested.parentSpanId).toBe(server.spanId);
    expect([publishRunning.kind, publishRequested.kind]).toEqual([SPAN_KIND.producer, SPAN_KIND.producer]);
    expect(inTrace().every((s) => s.service === 'vm-tenant-tracing-test')).toBe(true);

    // The fleet heard the fleet span's context, so it could continue the trace.
    const fleetCreate = proxy.seen.find((r) => r.method === 'POST' && r.path === '/v1/vms');
    expect(fleetCreate?.headers.traceparent).toBe(`00-${server.traceId}-${fleetCall.spanId}-01`);

    // The VM_RUNNING message carries the publish span's context in its headers.
    const jsm = await nc.jetstreamManager();
    const stored = await jsm.streams.getMessage(stack.config.natsStream, { last_by_subj: subjectFor(stack.config.natsSubjectPrefix, 'VM_RUNNING', tenantId) });
    expect(stored.header.get('traceparent')).toBe(`00-${server.traceId}-${publishRunning.spanId}-01`);

    // Every line logged inside the request's span carries its trace id (the access log line among them).
    const requestLine = stack.logLines
      .map((line) => JSON.parse(line))
      .find((l) => l.msg === 'request' && l.method === 'POST' && l.route === '/v1/vms' && l.tenant_id === tenantId);
    expect(requestLine).toMatchObject({ trace_id: server.traceId, span_id: server.spanId });

    // The traced run (its update carried the trace header) replays on the same code.
    expect(await replayLiveRuns(stack.temporal, tenantWorkflowId(tenantId))).toBeGreaterThan(0);
  });

  test("when a caller sends a W3C traceparent, then the request's server span continues that trace, named by its route pattern", async () => {
    const { token } = await createTenant(stack);
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const got = await stack.request('GET', '/v1/vms/vm-does-not-exist', { token, headers: { traceparent: `00-${callerTrace}-${callerSpan}-01` } });
    expect(got.status).toBe(404);
    const span = await eventually(
      async () => receiver.spans.find((s) => s.traceId === callerTrace && s.kind === SPAN_KIND.server),
      30_000,
      'the continued server span',
    );
    expect(span).toMatchObject({ parentSpanId: callerSpan, name: 'GET /v1/vms/:vm_id' });
  });

  test("when a ledger unit waits in the batch another caller started, then it still runs in its own caller's trace (the entry records the trace of the request that appended it)", async () => {
    const writer = new LedgerWriter(stack.db);
    const tracer = trace.getTracer('tracing-test');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const seen: Record<string, string | undefined> = {};
    const unit = (name: string, wait: boolean) => async () => {
      seen[name] = trace.getSpanContext(context.active())?.traceId;
      if (wait) await gate;
    };
    const [first, second] = ['first', 'second'].map((name) => tracer.startSpan(name));
    // The first caller flushes and holds its batch open; the second's unit queues behind it and runs in the next batch, which the first caller's flush runs.
    const firstDone = context.with(trace.setSpan(context.active(), first!), () => writer.run(unit('first', true)));
    const secondDone = context.with(trace.setSpan(context.active(), second!), () => writer.run(unit('second', false)));
    await eventually(async () => 'first' in seen, 5000, 'the first unit to start');
    release();
    await Promise.all([firstDone, secondDone]);
    expect(seen).toEqual({ first: first!.spanContext().traceId, second: second!.spanContext().traceId });
    first!.end();
    second!.end();
  });

  test("when an entry's trace is more than a day old, then the worker's housekeeping deletes it and keeps the fresh ones", async () => {
    const [old, fresh] = [randomUUID(), randomUUID()];
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await stack.db
      .insertInto('audit_event_traces')
      .values([
        { event_id: old, traceparent, tracestate: null, recorded_at: new Date(Date.now() - 25 * 3600_000) },
        { event_id: fresh, traceparent, tracestate: null },
      ])
      .execute();
    const housekeeping = startHousekeeping(stack.db, createLogger({ name: 'test', level: 'silent' }), 3_600_000);
    try {
      const left = async () =>
        (await stack.db.selectFrom('audit_event_traces').select('event_id').where('event_id', 'in', [old, fresh]).execute()).map((r) => r.event_id);
      await eventually(async () => (await left()).length === 1, 10_000, 'the old trace to be purged');
      expect(await left()).toEqual([fresh]);
    } finally {
      housekeeping.stop();
    }
  });

  test('when the collector takes connections and never answers, then requests answer as quickly and a VM still runs, and a flush at a stop waits at most FLUSH_WAIT_MS', async () => {
    receiver.blackHole.on = true;
    try {
      const { token } = await createTenant(stack);
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const spawned = await stack.request('POST', '/v1/vms', { token, body: SMALL_VM });
        expect(spawned.status).toBe(202);
        expect(Date.now() - started).toBeLessThan(3000);
        await eventually(
          async () => (await stack.request('GET', `/v1/vms/${spawned.body.vm_id}`, { token })).body.status === 'running',
          60_000,
          'the VM to run',
        );
      }
      const flushStarted = Date.now();
      await flushTracing();
      expect(Date.now() - flushStarted).toBeLessThan(FLUSH_WAIT_MS + 1000);
    } finally {
      receiver.blackHole.on = false;
    }
  });
});
