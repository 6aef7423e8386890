/** A mistake in how service-fs was called (bad flag, bad value). The CLI prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}
