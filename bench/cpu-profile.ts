/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and turns it into what docs/performance.md shows: a flame
 * graph as SVG (drawn here, no dependency) and self time by module, as a markdown table.
 *
 *   node --import tsx bench/cpu-profile.ts <file.cpuprofile> <out.svg> "<title>"
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

interface Tree {
  readonly name: string;
  readonly module: string;
  readonly self: number;
  readonly total: number;
  readonly children: Tree[];
}

/** Where a frame's code lives: a package, a folder of ours, Node itself, or V8's pseudo-frames. */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  const ours = /\/(src|bench)\/(.+)$/.exec(url);
  if (ours) return `${ours[1]}/${path.dirname(ours[2]!)}`;
  return url;
}

export function buildTree(profile: Profile): Tree {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const build = (node: ProfileNode): Tree => {
    const children = (node.children ?? []).map((id) => build(byId.get(id)!));
    const self = node.hitCount ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url ? `${path.basename(url)}:${lineNumber + 1}` : '';
    return {
      name: `${functionName || '(anonymous)'}${file ? ` ${file}` : ''}`,
      module: moduleOf(url, functionName),
      self,
      total: self + children.reduce((sum, c) => sum + c.total, 0),
      children: children.sort((a, b) => b.total - a.total),
    };
  };
  return build(profile.nodes[0]!);
}

/** Self samples per module, busiest first, idle left out: the share of CPU each spends. */
export function selfByModule(tree: Tree): Array<{ module: string; share: number }> {
  const totals = new Map<string, number>();
  const visit = (t: Tree) => {
    if (t.module !== '(idle)') totals.set(t.module, (totals.get(t.module) ?? 0) + t.self);
    t.children.forEach(visit);
  };
  visit(tree);
  const all = [...totals.values()].reduce((a, b) => a + b, 0);
  return [...totals.entries()].map(([module, n]) => ({ module, share: n / all })).sort((a, b) => b.share - a.share);
}

const COLORS: Record<string, string> = { src: '#e4572e', node: '#76b041', '@temporalio': '#4c72b0', pg: '#8172b2', express: '#ccb974', '(': '#bbbbbb' };
const colorOf = (module: string) => Object.entries(COLORS).find(([prefix]) => module.startsWith(prefix))?.[1] ?? '#f2a541';
const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A flame graph (root at the bottom) of the busy samples; frames under 0.2% of them are left out. */
export function flameGraphSvg(tree: Tree, title: string): string {
  const busy = { ...tree, children: tree.children.filter((c) => c.module !== '(idle)') };
  const total = busy.children.reduce((sum, c) => sum + c.total, 0) || 1;
  const width = 1200;
  const row = 16;
  const rects: string[] = [];
  let depthMax = 0;
  const draw = (t: Tree, x: number, depth: number) => {
    const w = (t.total / total) * width;
    if (w < width * 0.002) return;
    depthMax = Math.max(depthMax, depth);
    rects.push(
      `<g><title>${esc(`${t.name} [${t.module}] ${((t.total / total) * 100).toFixed(1)}%`)}</title><rect x="${x.toFixed(1)}" y="${-depth * row}" width="${w.toFixed(1)}" height="${row - 1}" fill="${colorOf(t.module)}"/>${w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="${-depth * row + 11}" font-size="10">${esc(t.name.slice(0, Math.floor(w / 6)))}</text>` : ''}</g>`,
    );
    let cx = x;
    for (const child of t.children) {
      draw(child, cx, depth + 1);
      cx += (child.total / total) * width;
    }
  };
  let x = 0;
  for (const child of busy.children) {
    draw(child, x, 0);
    x += (child.total / total) * width;
  }
  const height = (depthMax + 1) * row + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 ${-(depthMax * row) - 30} ${width} ${height}" font-family="monospace">`,
    `<rect x="0" y="${-(depthMax * row) - 30}" width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="${-(depthMax * row) - 12}" text-anchor="middle" font-family="sans-serif" font-size="14">${esc(title)} (${total} busy samples; width = share of CPU)</text>`,
    ...rects,
    '</svg>',
    '',
  ].join('\n');
}

if (require.main === module) {
  const [input, output, title] = process.argv.slice(2);
  if (!input || !output) throw new Error('usage: bench/cpu-profile.ts <file.cpuprofile> <out.svg> [title]');
  const tree = buildTree(JSON.parse(readFileSync(input, 'utf8')) as Profile);
  writeFileSync(output, flameGraphSvg(tree, title ?? path.basename(input)));
  const rows = selfByModule(tree).slice(0, 15);
  process.stdout.write(
    ['| module | share of busy CPU |', '|---|---|', ...rows.map((r) => `| ${r.module} | ${(r.share * 100).toFixed(1)}% |`)].join('\n') + '\n',
  );
}
