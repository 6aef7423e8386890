import pg from 'pg';
import { ApiClient, BENCH_VM, mapLimit } from './api-client';
import { startBenchStack } from './bench-stack';

async function main() {
  const stack = await startBenchStack();
  const api = new ApiClient(stack.apiUrl);
  try {
    const [t] = await api.createTenants(stack.adminToken, 'p', 1, 10000);
    const fifty = await api.createTenants(stack.adminToken, 'f', 20, 10000);
    const client = new pg.Client({ connectionString: stack.ownerUrl });
    await client.connect();
    const waits: Record<string, number> = {};
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await client.query(`select application_name, state, wait_event_type, wait_event, left(query, 60) as q from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle'`);
        for (const r of rows) { const k = `${r.application_name}|${r.state}|${r.wait_event_type}:${r.wait_event}|${r.q}`; waits[k] = (waits[k] ?? 0) + 1; }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    for (const [label, tenants, c] of [['1t c1', [t!], 1], ['1t c8', [t!], 8], ['20t c16', fifty, 16]] as const) {
      const times: number[] = [];
      const start = Date.now();
      await mapLimit(Array.from({ length: 80 }, (_, i) => i), c, async (i) => {
        const s = performance.now();
        const a = await api.request('POST', '/v1/vms', tenants[i % tenants.length]!.token, BENCH_VM);
        times.push(performance.now() - s);
        if (a.status !== 202) console.log(a.status);
      });
      times.sort((a, b) => a - b);
      console.log(label, 'p50', times[40]!.toFixed(1), 'p90', times[72]!.toFixed(1), 'rate', (80 / ((Date.now() - start) / 1000)).toFixed(1));
    }
    sampling = false;
    await sampler;
    for (const [k, v] of Object.entries(waits).sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(v, k);
    await client.end();
  } finally {
    await stack.stop();
  }
}
main().catch((e) => { console.error(e); process.exit(1); });
