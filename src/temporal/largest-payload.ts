/**
 * The largest payload anywhere in a Temporal history event (workflow input, update arguments,
 * activity results): what Temporal's 2 MiB payload limit applies to.
 */
export function largestPayload(value: unknown): number {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return 0;
  const record = value as Record<string, unknown>;
  let max = record.data instanceof Uint8Array && 'metadata' in record ? record.data.length : 0;
  for (const child of Object.values(record)) max = Math.max(max, largestPayload(child));
  return max;
}
