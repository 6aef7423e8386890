import { status } from '@grpc/grpc-js';
import { Metadata } from '@grpc/grpc-js';
import type { CallDeadline } from '../../src/temporal/call-deadline';
import { retryWhileExhausted } from '../../src/temporal/retry-exhausted';
import { isTemporalUnavailable } from '../../src/temporal/temporal-unavailable';

/** An error shaped as grpc-js raises it (code, details, metadata), as the Temporal client rethrows it. */
function grpcError(code: status, message = 'refused'): Error {
  return Object.assign(new Error(`${code} ${message}`), { code, details: message, metadata: new Metadata() });
}

function deadlineIn(ms: number): CallDeadline {
  const at = Date.now() + ms;
  return { at, remainingMs: () => Math.max(0, at - Date.now()) };
}

describe('retryWhileExhausted', () => {
  test('when Temporal keeps refusing with RESOURCE_EXHAUSTED, then the retries stop before the call deadline and the refusal counts as Temporal unavailable', async () => {
    let attempts = 0;
    const started = Date.now();
    const refusal = await retryWhileExhausted(async () => {
      attempts++;
      throw grpcError(status.RESOURCE_EXHAUSTED);
    }, deadlineIn(600)).catch((error: unknown) => error);
    expect(Date.now() - started).toBeLessThanOrEqual(650);
    expect(attempts).toBeGreaterThan(1);
    expect(isTemporalUnavailable(refusal)).toBe(true);
  });

  test('when the refusal is recognised by its gRPC status alone (no telling message), then it is retried until it succeeds', async () => {
    let attempts = 0;
    const result = await retryWhileExhausted(async () => {
      attempts++;
      if (attempts < 3) throw new Error('Update-With-Start failed', { cause: grpcError(status.RESOURCE_EXHAUSTED, 'busy') });
      return 'admitted';
    }, deadlineIn(5_000));
    expect(result).toBe('admitted');
    expect(attempts).toBe(3);
  });

  test('when the error is an answer (not a refusal for load), then it is thrown at once and is not Temporal unavailable', async () => {
    let attempts = 0;
    const answer = Object.assign(new Error('quota'), { name: 'ApplicationFailure', type: 'QuotaExceeded' });
    await expect(
      retryWhileExhausted(async () => {
        attempts++;
        throw answer;
      }, deadlineIn(5_000)),
    ).rejects.toBe(answer);
    expect(attempts).toBe(1);
    expect(isTemporalUnavailable(answer)).toBe(false);
    expect(isTemporalUnavailable(grpcError(status.NOT_FOUND))).toBe(false);
  });
});
