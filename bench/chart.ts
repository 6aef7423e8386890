/**
 * Latency (p50, p99) and throughput against concurrency, admission beside the floor, as an SVG
 * drawn here (a few lines and labels; no charting dependency). `node --import tsx bench/chart.ts
 * results.json out.svg` redraws one from a saved result.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface ChartSeries {
  readonly label: string;
  readonly color: string;
  /** One point per concurrency. */
  readonly points: ReadonlyArray<{ concurrency: number; p50_ms: number; p99_ms: number; per_s: number }>;
}

const WIDTH = 900;
const HEIGHT = 380;
const PANEL = { top: 50, bottom: 320, width: 340 };
const LEFT_X = [70, 520];

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Nice upper bound for an axis: 1, 2 or 5 × a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= max)!;
}

function panel(
  x0: number,
  title: string,
  unit: string,
  concurrencies: readonly number[],
  lines: ReadonlyArray<{ color: string; dashed: boolean; values: readonly number[] }>,
): string {
  const max = niceMax(Math.max(...lines.flatMap((l) => l.values)));
  const x = (i: number) => x0 + (concurrencies.length === 1 ? PANEL.width / 2 : (i / (concurrencies.length - 1)) * PANEL.width);
  const y = (v: number) => PANEL.bottom - (v / max) * (PANEL.bottom - PANEL.top);
  const out = [`<text x="${x0 + PANEL.width / 2}" y="${PANEL.top - 20}" text-anchor="middle" font-weight="bold">${esc(title)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const v = (max / 4) * k;
    out.push(`<line x1="${x0}" x2="${x0 + PANEL.width}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${x0 - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${Math.round(v * 10) / 10}</text>`);
  }
  concurrencies.forEach((c, i) => out.push(`<text x="${x(i)}" y="${PANEL.bottom + 16}" text-anchor="middle" font-size="11">${c}</text>`));
  out.push(`<text x="${x0 + PANEL.width / 2}" y="${PANEL.bottom + 34}" text-anchor="middle" font-size="12">concurrency (requests in flight)</text>`);
  out.push(
    `<text x="${x0 - 48}" y="${(PANEL.top + PANEL.bottom) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 ${x0 - 48} ${(PANEL.top + PANEL.bottom) / 2})">${esc(unit)}</text>`,
  );
  for (const line of lines) {
    const points = line.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${points}" fill="none" stroke="${line.color}" stroke-width="2"${line.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    line.values.forEach((v, i) => out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3" fill="${line.color}"/>`));
  }
  return out.join('\n');
}

export function renderChart(series: readonly ChartSeries[], caption: string): string {
  const concurrencies = [...new Set(series.flatMap((s) => s.points.map((p) => p.concurrency)))].sort((a, b) => a - b);
  const at = (s: ChartSeries, pick: (p: ChartSeries['points'][number]) => number) =>
    concurrencies.map((c) => pick(s.points.find((p) => p.concurrency === c) ?? { concurrency: c, p50_ms: 0, p99_ms: 0, per_s: 0 }));
  const latency = series.flatMap((s) => [
    { color: s.color, dashed: false, values: at(s, (p) => p.p50_ms) },
    { color: s.color, dashed: true, values: at(s, (p) => p.p99_ms) },
  ]);
  const throughput = series.map((s) => ({ color: s.color, dashed: false, values: at(s, (p) => p.per_s) }));
  const legend = series.map(
    (s, i) =>
      `<rect x="${70 + i * 210}" y="${HEIGHT - 14}" width="12" height="12" fill="${s.color}"/><text x="${88 + i * 210}" y="${HEIGHT - 4}" font-size="12">${esc(s.label)}</text>`,
  );
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT + 20}" viewBox="0 0 ${WIDTH} ${HEIGHT + 20}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(LEFT_X[0]!, 'Latency: p50 solid, p99 dashed', 'ms', concurrencies, latency),
    panel(LEFT_X[1]!, 'Throughput', 'per second', concurrencies, throughput),
    ...legend,
    `<text x="${WIDTH / 2}" y="${HEIGHT + 14}" text-anchor="middle" font-size="11" fill="#555">${esc(caption)}</text>`,
    '</svg>',
    '',
  ].join('\n');
}

interface SavedRun {
  connections: number;
  latency: { p50_ms: number; p99_ms: number };
  admissions_per_s: number;
}
interface SavedFloorRun {
  primitive: string;
  concurrency: number;
  latency: { p50_ms: number; p99_ms: number };
  updates_per_s: number;
}

/** The chart of one saved bench result (admission over 1 and 50 tenants, both floor primitives). */
export function chartOfResult(result: {
  timestamp: string;
  quick: boolean;
  admission: { one_tenant: readonly SavedRun[]; fifty_tenants: readonly SavedRun[] };
  floor: { runs?: readonly SavedFloorRun[] };
}): string {
  const admission = (runs: readonly SavedRun[]) =>
    runs.map((r) => ({ concurrency: r.connections, p50_ms: r.latency.p50_ms, p99_ms: r.latency.p99_ms, per_s: r.admissions_per_s }));
  const floor = (primitive: string) =>
    (result.floor.runs ?? [])
      .filter((r) => r.primitive === primitive)
      .map((r) => ({ concurrency: r.concurrency, p50_ms: r.latency.p50_ms, p99_ms: r.latency.p99_ms, per_s: r.updates_per_s }));
  return renderChart(
    [
      { label: 'admission, 50 tenants', color: '#d62728', points: admission(result.admission.fifty_tenants) },
      { label: 'admission, 1 tenant', color: '#ff7f0e', points: admission(result.admission.one_tenant) },
      { label: 'floor: update, 50 workflows', color: '#1f77b4', points: floor('update') },
      { label: 'floor: update-with-start', color: '#2ca02c', points: floor('update_with_start') },
    ],
    `bench run ${result.timestamp}${result.quick ? ' (BENCH_QUICK: not comparable)' : ''}`,
  );
}

if (require.main === module) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) throw new Error('usage: bench/chart.ts <result.json> <out.svg>');
  writeFileSync(output, chartOfResult(JSON.parse(readFileSync(input, 'utf8'))));
}
