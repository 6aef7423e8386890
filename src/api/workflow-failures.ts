/**
 * Finds the ApplicationFailure type in an error from the Temporal client, walking the `cause`
 * chain (WorkflowUpdateFailedError -> ApplicationFailure). Compared by name, never instanceof:
 * failures cross the sandbox and client boundary.
 */
export function failureType(error: unknown): string | undefined {
  return applicationFailure(error)?.type;
}

export function failureDetails<T>(error: unknown): T | undefined {
  return applicationFailure(error)?.details?.[0] as T | undefined;
}

interface ApplicationFailureLike {
  name: string;
  type?: string;
  details?: unknown[];
  cause?: unknown;
}

function applicationFailure(error: unknown): ApplicationFailureLike | undefined {
  let current = error as ApplicationFailureLike | undefined;
  for (let depth = 0; current && depth < 8; depth++) {
    if (current.name === 'ApplicationFailure') return current;
    current = current.cause as ApplicationFailureLike | undefined;
  }
  return undefined;
}
