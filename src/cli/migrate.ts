/**
 * One-shot migration entry point (the `migrate` service of docker-compose.yml, the migrations Job):
 * `node dist/cli/migrate.js` migrates MIGRATION_DATABASE_URL to the latest schema, creating the
 * database when it is missing, and exits. `--wait` (the pods' init container) migrates nothing: it
 * waits, with DATABASE_URL (the service login), until the schema is the one this image needs.
 */
import { redactUrl } from '../connections/redact-url';
import { describeConnectionFailure } from '../connections/connection-failure';
import { loadConfig } from '../config/config';
import { migrateToLatest, waitForSchema } from '../db/migrate';

const log = (level: string, msg: string, fields: Record<string, unknown> = {}) => console.log(JSON.stringify({ level, msg, ...fields }));

async function main(): Promise<void> {
  const config = loadConfig();
  if (process.argv.includes('--wait')) {
    await waitForSchema(config.databaseUrl, {
      report: (missing, error) =>
        log('warn', 'waiting for the migrations Job: the schema is not yet the one this image needs', {
          database: redactUrl(config.databaseUrl),
          missing,
          ...(error ? { error: describeConnectionFailure(error) } : {}),
        }),
    });
    log('info', 'the schema is the one this image needs');
    return;
  }
  const { newerThanImage } = await migrateToLatest(config.migrationDatabaseUrl);
  if (newerThanImage.length > 0) log('info', 'the database has migrations newer than this image (a rollback): nothing to do', { newer: newerThanImage });
  else log('info', 'database migrated to the latest schema');
}

main().catch((error: unknown) => {
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  console.error(JSON.stringify({ level: 'fatal', msg: 'migration failed', error: `${error instanceof Error ? error.message : String(error)}${cause}` }));
  process.exit(1);
});
