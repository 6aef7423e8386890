import { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { listAuditEvents } from '../../ledger/ledger-queries';
import { DEFAULT_LIMIT, MAX_LIMIT, parseReadOptions } from '../audit-filters';
import { formatJsonLine, formatTable } from '../audit-entry-format';
import { EXIT, withLedgerDatabase, type RunContext } from './run-context';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function readCommand(run: RunContext): Command {
  return new Command('read')
    .description('print ledger entries in seq order, one JSON object per line by default')
    .option('--filter <key=value>', 'equality filter, repeatable; key is tenant-id, vm-id or event-type', collect)
    .option('--event-type <type>', 'same as --filter event-type=TYPE')
    .option('--since <time>', 'entries that occurred at or after TIME (ISO 8601: 2026-06-14 or 2026-06-14T09:30:00Z; a time needs Z or an offset)')
    .option('--until <time>', 'entries that occurred before TIME (exclusive)')
    .option('--limit <n>', `at most N entries, 1-${MAX_LIMIT} (default ${DEFAULT_LIMIT})`)
    .option('--order <asc|desc>', 'by seq, oldest first (asc, default) or newest first (desc)')
    .option('--format <json|table>', 'JSON Lines with every field (default) or a table for reading')
    .addHelpText('after', '\nExample:\n  service-fs read --filter tenant-id=acme-corp --event-type TENANT_CREATED --limit 1\n')
    .action(
      async (
        flags: { filter?: string[]; eventType?: string; since?: string; until?: string; limit?: string; order?: string; format?: string },
        command: Command,
      ) => {
        // The flags are checked before the database is touched, so a typo never waits on a connection.
        const { query, format } = parseReadOptions({ ...flags, 'event-type': flags.eventType });
        const { databaseUrl } = command.optsWithGlobals<{ databaseUrl?: string }>();
        const config = loadConfig({ ...run.env, ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }) });
        await withLedgerDatabase(run, config.databaseUrl, async (db) => {
          const rows = await listAuditEvents(db, query);
          if (format === 'table') run.io.stdout(`${formatTable(rows)}\n`);
          else if (rows.length > 0) run.io.stdout(`${rows.map(formatJsonLine).join('\n')}\n`);
          if (rows.length === 0) run.io.stderr('service-fs: no matching entries\n');
          run.exitCode = EXIT.ok;
        });
      },
    );
}
