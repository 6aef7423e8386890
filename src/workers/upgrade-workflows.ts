/**
 * The upgrade procedure of docs/upgrades.md: `node dist/workers/upgrade-workflows.js [--dry-run]`
 * (from a checkout: `node --import tsx src/workers/upgrade-workflows.ts`), with the worker's
 * TEMPORAL_* configuration. Lists the open tenant workflow runs that still need frozen code to
 * replay and, unless --dry-run, asks each to continue as new into the current code, until none is
 * left. Exit 0: every run is on the current code; 1: some still are not (listed); 2: a bad argument.
 */
import { loadConfig } from '../config/config';
import { connectTenantWorkflows } from '../temporal/tenant-workflows-connection';
import { upgradeTenantRuns } from '../temporal/tenant-workflow-upgrade';

const log = (level: string, msg: string, fields: Record<string, unknown> = {}) => console.log(JSON.stringify({ level, msg, ...fields }));

async function main(): Promise<number> {
  const unknown = process.argv.slice(2).filter((arg) => arg !== '--dry-run');
  if (unknown.length > 0) {
    log('error', `unknown argument ${unknown[0]}; usage: upgrade-workflows [--dry-run]`);
    return 2;
  }
  const dryRun = process.argv.includes('--dry-run');
  const config = loadConfig();
  const { connection, client } = await connectTenantWorkflows(config);
  try {
    const report = await upgradeTenantRuns(client, config.temporalTaskQueue, {
      dryRun,
      onRound: (round, runs) => log('info', `round ${round}: ${runs.length} tenant workflow runs need frozen code`, { runs }),
    });
    if (report.remaining.length === 0) {
      log('info', 'every open tenant workflow run is on the current code: the frozen code may be deleted (src/workflows/legacy/README.md)');
      return 0;
    }
    log(dryRun ? 'info' : 'error', dryRun ? 'dry run: nothing signalled' : 'some runs did not continue as new in time; run the command again', {
      remaining: report.remaining.length,
    });
    return 1;
  } finally {
    await connection.close();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    log('fatal', 'upgrade-workflows failed', { error: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  },
);
