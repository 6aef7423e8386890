/** Runs `call` and says how long it took: a fault test asserts answers came within their deadline. */
export async function timed<T>(call: () => Promise<T>): Promise<T & { ms: number }> {
  const started = Date.now();
  const value = await call();
  return Object.assign(value as object, { ms: Date.now() - started }) as T & { ms: number };
}
