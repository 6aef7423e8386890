import { readFile } from 'node:fs/promises';
import { UsageError } from './usage-error';

// Apart from verify-tenant.ts, which reaches the database and NATS: the `vm-tenant` CLI reads the
// files a tenant saved through these alone, and its package bundles only what it imports.

/** JSON values in a file: one document, or JSON Lines. */
export async function readJsonValues(file: string): Promise<unknown[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    return [JSON.parse(text)];
  } catch {
    try {
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as unknown);
    } catch {
      throw new UsageError(`${file} is neither JSON nor JSON Lines`);
    }
  }
}

/** Pages of GET /v1/audit (`{items: [...]}`), arrays of entries, or entries, flattened. */
export function flatten(values: unknown[]): unknown[] {
  return values.flatMap((value) => {
    if (Array.isArray(value)) return flatten(value);
    const items = (value as { items?: unknown } | null)?.items;
    return Array.isArray(items) ? items : [value];
  });
}
