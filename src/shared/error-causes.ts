/** Deep enough for any real wrapping (SDK error → gRPC error, pg error in a pool error); ends cycles. */
const MAX_DEPTH = 8;

/**
 * An error, then what caused it, depth first: the members of an AggregateError, and its `cause`
 * (nats.js names it `chainedError`).
 */
export function* errorCauses(error: unknown, depth = 0): Generator<object> {
  if (depth > MAX_DEPTH || typeof error !== 'object' || error === null) return;
  yield error;
  if (error instanceof AggregateError) for (const inner of error.errors) yield* errorCauses(inner, depth + 1);
  const { cause, chainedError } = error as { cause?: unknown; chainedError?: unknown };
  yield* errorCauses(chainedError ?? cause, depth + 1);
}

/** The innermost error of the first branch of errorCauses: the one nothing else caused. */
export function rootCause(error: unknown): object | undefined {
  for (const candidate of errorCauses(error)) {
    const { cause, chainedError } = candidate as { cause?: unknown; chainedError?: unknown };
    const hasInner = (candidate instanceof AggregateError && candidate.errors.length > 0) || (chainedError ?? cause) != null;
    if (!hasInner) return candidate;
  }
  return undefined;
}

/** The first of an error and its causes that `matches`. */
export function findCause<T extends object>(error: unknown, matches: (candidate: object) => candidate is T): T | undefined;
export function findCause(error: unknown, matches: (candidate: object) => boolean): object | undefined;
export function findCause(error: unknown, matches: (candidate: object) => boolean): object | undefined {
  for (const candidate of errorCauses(error)) if (matches(candidate)) return candidate;
  return undefined;
}

/**
 * A one-line reason for a message: the first member of an AggregateError (pg reports a refused
 * dual-stack connect as one with an empty message), its message, else its code or name.
 */
export function reasonOf(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return reasonOf(error.errors[0]);
  if (error instanceof Error) return error.message || String((error as { code?: unknown }).code ?? error.name);
  return String(error);
}
