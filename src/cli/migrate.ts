/**
 * One-shot migration entry point (the `migrate` service of docker-compose.yml):
 * `node --import tsx src/cli/migrate.ts` migrates MIGRATION_DATABASE_URL to the latest
 * schema, creating the database when it is missing, and exits.
 */
import { loadConfig } from '../config/config';
import { migrateToLatest } from '../db/migrate';

async function main(): Promise<void> {
  const config = loadConfig();
  await migrateToLatest(config.migrationDatabaseUrl);
  console.log(JSON.stringify({ level: 'info', msg: 'database migrated to the latest schema' }));
}

main().catch((error: unknown) => {
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  console.error(JSON.stringify({ level: 'fatal', msg: 'migration failed', error: `${error instanceof Error ? error.message : String(error)}${cause}` }));
  process.exit(1);
});
