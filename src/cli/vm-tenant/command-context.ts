import type { Command } from 'commander';
import { allPages, createApiClient, type ApiClient } from './api-client';
import { resolveConnection, type ConnectionFlags } from './connection-settings';
import { createPrinter, type OutputFormat, type Printer } from './output';

/** What every subcommand gets: the API client (built from the global flags) and the printer. */
export interface CommandContext {
  client(): Promise<ApiClient>;
  printer(): Printer;
}

export function contextOf(command: Command, env: NodeJS.ProcessEnv): CommandContext {
  const flags = command.optsWithGlobals<ConnectionFlags & { output: OutputFormat }>();
  return {
    client: async () => createApiClient(await resolveConnection(flags, env)),
    printer: () => createPrinter(flags.output),
  };
}

export interface ListFlags {
  limit?: number;
  cursor?: string;
  all?: boolean;
}

/** One page (`--limit`, `--cursor`; the next cursor goes to stderr) or, with `--all`, every page. */
export async function listRows<T>(
  client: ApiClient,
  printer: Printer,
  path: string,
  flags: ListFlags,
  query: Record<string, string | number | undefined> = {},
): Promise<T[]> {
  if (flags.all) {
    const rows: T[] = [];
    for await (const page of allPages<T>(client, path, { ...query, limit: flags.limit })) rows.push(...page);
    return rows;
  }
  const page = await client.call<{ items: T[]; next_cursor: string | null }>('GET', path, { query: { ...query, limit: flags.limit, cursor: flags.cursor } });
  if (page.next_cursor) printer.note(`more: --cursor ${page.next_cursor} (or --all)`);
  return page.items;
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${JSON.stringify(value)} is not a positive whole number`);
  return n;
}
