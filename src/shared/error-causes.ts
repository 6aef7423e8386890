/** Deep enough for any real wrapping (SDK error → gRPC error, pg error in a pool error); ends cycles. */
const MAX_DEPTH = 8;

/** An error, then what caused it: its `cause` chain and the members of an AggregateError, depth first. */
export function* errorCauses(error: unknown, depth = 0): Generator<object> {
  if (depth > MAX_DEPTH || typeof error !== 'object' || error === null) return;
  yield error;
  if (error instanceof AggregateError) for (const inner of error.errors) yield* errorCauses(inner, depth + 1);
  yield* errorCauses((error as { cause?: unknown }).cause, depth + 1);
}

/** The first of an error and its causes that `matches`. */
export function findCause<T extends object>(error: unknown, matches: (candidate: object) => candidate is T): T | undefined;
export function findCause(error: unknown, matches: (candidate: object) => boolean): object | undefined;
export function findCause(error: unknown, matches: (candidate: object) => boolean): object | undefined {
  for (const candidate of errorCauses(error)) if (matches(candidate)) return candidate;
  return undefined;
}
