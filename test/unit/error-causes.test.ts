import { describeConnectionFailure } from '../../src/connections/connection-failure';
import { errorCauses, findCause, rootCause } from '../../src/shared/error-causes';

describe('errorCauses', () => {
  test('when an error wraps others (cause, AggregateError), then each is visited once, outermost first, depth first', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const inner = new AggregateError([new Error('first'), refused], 'all failed');
    const outer = new Error('query failed', { cause: inner });
    expect([...errorCauses(outer)].map((e) => (e as Error).message)).toEqual(['query failed', 'all failed', 'first', 'connect ECONNREFUSED']);
    expect(findCause(outer, (e) => (e as { code?: string }).code === 'ECONNREFUSED')).toBe(refused);
  });

  test('when the cause chain loops or is not an object, then the walk ends', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    Object.assign(a, { cause: b });
    expect([...errorCauses(a)].length).toBeLessThanOrEqual(9);
    expect([...errorCauses(new Error('x', { cause: 'a string' }))]).toHaveLength(1);
    expect(findCause(undefined, () => true)).toBeUndefined();
  });

  test('when nats.js chains an error (chainedError), then the walk follows it, and the root cause is the innermost of the first branch', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4222'), { code: 'ECONNREFUSED' });
    const natsError = Object.assign(new Error('CONNECTION_REFUSED'), { code: 'CONNECTION_REFUSED', chainedError: refused });
    expect([...errorCauses(natsError)]).toEqual([natsError, refused]);
    expect(rootCause(natsError)).toBe(refused);
    expect(describeConnectionFailure(natsError)).toBe('connect ECONNREFUSED 127.0.0.1:4222 (ECONNREFUSED)');
    const both = new AggregateError([new Error('connect ECONNREFUSED ::1:5432'), refused], '');
    expect(rootCause(new Error('pool', { cause: both }))).toBe(both.errors[0]);
  });
});
