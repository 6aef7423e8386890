/** A problem answer of the API (RFC 9457): printed as its title, detail and code. */
export class ProblemError extends Error {
  override readonly name = 'ProblemError';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
    readonly code: string,
    readonly problem: Record<string, unknown>,
  ) {
    super(`${title}${detail ? `: ${detail}` : ''} (code ${code}, HTTP ${status})`);
  }
}

/** Anything else that stops a command: the API unreachable, a bad profile file, a VM that failed. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly code: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
