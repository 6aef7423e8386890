import { describeSpread, type Spread } from './stats';

/** One target of issue 20: the figure (median and spread over the repetitions where there are several), its floor, and whether it is met. */
export interface TargetRow {
  readonly target: string;
  readonly figure: string;
  readonly floor: string;
  /** undefined: reported, no target. */
  readonly met: boolean | undefined;
}

/** Met when the median is within the bound (≤ or ≥ as `direction` says). */
export function judge(s: Spread, bound: number, direction: 'at_most' | 'at_least'): boolean {
  return direction === 'at_most' ? s.median <= bound : s.median >= bound;
}

/** `bound` null: a figure reported beside the targets, with no target of its own. */
export function ratioRow(
  target: string,
  ratio: Spread,
  bound: number | null,
  direction: 'at_most' | 'at_least',
  ours: Spread,
  floor: Spread,
  unit: string,
): TargetRow {
  return {
    target,
    figure: `${describeSpread(ratio, '×')}: ${describeSpread(ours, unit)}`,
    floor: describeSpread(floor, unit),
    met: bound === null ? undefined : judge(ratio, bound, direction),
  };
}

export function targetsTable(rows: readonly TargetRow[]): string {
  const lines = ['| target | figure: median (min–max) | floor | status |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| ${r.target} | ${r.figure} | ${r.floor} | ${r.met === undefined ? 'reported' : r.met ? 'met' : '**missed**'} |`);
  return lines.join('\n');
}
