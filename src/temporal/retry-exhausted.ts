const RESOURCE_EXHAUSTED = 8;

function isResourceExhausted(error: unknown): boolean {
  let current = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; current && depth < 8; depth++) {
    if (current.code === RESOURCE_EXHAUSTED) return true;
    if (typeof current.message === 'string' && /RESOURCE_EXHAUSTED|in-flight updates/i.test(current.message)) return true;
    // The workflow task that held the update failed before the update was durably accepted (e.g. a
    // continue-as-new in that task met a concurrent event: UnhandledCommand). The server drops the
    // update, so sending it again, same update id, is safe; it lands in the retried task or the new run.
    if (typeof current.message === 'string' && /update due to unexpected workflow task failure/i.test(current.message)) return true;
    current = current.cause as typeof current;
  }
  return false;
}

/**
 * Retries a call Temporal refused for load (e.g. the 10 in-flight updates per workflow cap, hit
 * when several API processes burst on one tenant), or an update dropped with its failed workflow
 * task, with jittered backoff, so neither surfaces as a 5xx. Gives up after `deadlineMs`.
 */
export async function retryWhileExhausted<T>(call: () => Promise<T>, deadlineMs = 30_000): Promise<T> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      if (!isResourceExhausted(error) || Date.now() - started > deadlineMs) throw error;
      const backoff = Math.min(1000, 20 * 2 ** attempt);
      await new Promise((resolve) => setTimeout(resolve, backoff / 2 + Math.random() * backoff));
    }
  }
}
