import { judge } from '../../bench/report';
import { describeSpread, marginal, spread, summarize } from '../../bench/stats';

describe('bench statistics', () => {
  test('when repetitions give an odd or even number of figures, then the median is the middle one or the mean of the two, with the range', () => {
    expect(spread([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, values: [3, 1, 2] });
    expect(spread([4, 1, 2, 3])).toMatchObject({ median: 2.5, min: 1, max: 4 });
    expect(describeSpread(spread([1.234, 2, 3]), '×')).toBe('2× (1.23–3×)');
    expect(spread([]).median).toBeNaN();
  });

  test('when a summary is taken, then p50 and p99 are nearest-rank percentiles', () => {
    const s = summarize(Array.from({ length: 100 }, (_, i) => i + 1));
    expect([s.n, s.p50_ms, s.p99_ms, s.max_ms]).toEqual([100, 50, 99, 100]);
  });

  test('when history counts are taken before and after, then the marginal per lifecycle is their difference divided, zeros left out', () => {
    expect(marginal({ a: 2, b: 5 }, { a: 12, b: 5, c: 4 }, 4)).toEqual({ a: 2.5, c: 1 });
  });

  test('when a target bounds a ratio from above or below, then it is judged on the median', () => {
    expect(judge(spread([1.2, 1.4, 1.3]), 1.3, 'at_most')).toBe(true);
    expect(judge(spread([0.5, 0.7, 0.55]), 0.6, 'at_least')).toBe(false);
  });
});
