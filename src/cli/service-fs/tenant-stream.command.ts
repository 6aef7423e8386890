import { Command } from 'commander';
import { loadConfig } from '../../config/config';
import { eventStreamLimits, isStreamNotFound } from '../../events/jetstream-stream';
import { connectNats, NatsConnectError } from '../../events/nats-connection';
import { ensureTenantStream, removeTenantStream, tenantStagingStreamName, tenantStreamName } from '../../events/tenant-streams';
import { ownerSubjectFilter } from '../../shared/event-subjects';
import { isTenantId } from '../../shared/tenant-id';
import { UsageError } from '../usage-error';
import { EXIT, type RunContext } from './run-context';

const DESCRIPTION = `give a tenant a JetStream stream of its own, or delete it (--remove)

Run with the worker's NATS settings (NATS_URL, NATS_STREAM, NATS_SUBJECT_PREFIX, NATS_STREAM_*).
Makes <NATS_STREAM>_T_<tenant>, which holds the tenant's events and nothing else: its message
sequence, which a JetStream consumer sees in every delivery, counts only that tenant's events
(1, 2, 3, ...), unlike the event stream's, which counts every tenant's. It is fed through
<NATS_STREAM>_TS_<tenant> (sourced from the event stream, filter <prefix>.*.*.<tenant>), so
the header a sourced message carries names no platform-wide sequence either. Both streams take
the event stream's limits. A new stream starts with what the event stream still holds of the
tenant's events. Running it again brings the settings up to date; with NATS_TENANT_STREAMS=on
the workers do this when a tenant is created and deleted. Give the tenant's NATS user the
permissions of docs/events.md, "A stream of the tenant's own". Exits 0 when done, 2 on bad
usage, 3 when NATS cannot be reached or the event stream does not exist.`;

export function tenantStreamCommand(run: RunContext): Command {
  return new Command('tenant-stream')
    .description(DESCRIPTION)
    .requiredOption('--tenant <id>', 'the tenant')
    .option('--remove', "delete the tenant's streams (and the events in them; the event stream and the ledger keep theirs)")
    .addHelpText('after', '\nExample:\n  service-fs tenant-stream --tenant acme-corp\n')
    .action(async (flags: { tenant: string; remove?: boolean }) => {
      if (!isTenantId(flags.tenant)) throw new UsageError(`--tenant must be a tenant id, got ${JSON.stringify(flags.tenant)}`);
      const config = loadConfig(run.env);
      const fail = (message: string) => {
        run.io.stderr(`service-fs: ${message}\n`);
        run.exitCode = EXIT.databaseUnavailable;
      };
      const nc = await connectNats(config.nats, { name: 'service-fs', waitForServer: false }).catch((error: unknown) => {
        if (!(error instanceof NatsConnectError)) throw error;
        fail(error.message);
        return null;
      });
      if (!nc) return;
      try {
        const jsm = await nc.jetstreamManager();
        const spec = { mainStream: config.natsStream, subjectPrefix: config.natsSubjectPrefix, tenantId: flags.tenant };
        if (flags.remove) {
          const removed = await removeTenantStream(jsm, spec);
          const names = `${tenantStreamName(spec.mainStream, spec.tenantId)}, ${tenantStagingStreamName(spec.mainStream, spec.tenantId)}`;
          run.io.stdout(removed ? `ok: removed ${names}\n` : `ok: no stream of tenant ${flags.tenant} to remove (${names})\n`);
        } else {
          const missing = await jsm.streams.info(config.natsStream).then(
            () => false,
            (error: unknown) => {
              if (isStreamNotFound(error)) return true;
              throw error;
            },
          );
          if (missing) return fail(`the event stream ${config.natsStream} does not exist (a worker makes it when it starts)`);
          const { stream, staging, outcome } = await ensureTenantStream(jsm, { ...spec, limits: eventStreamLimits(config) });
          const filter = ownerSubjectFilter(spec.subjectPrefix, spec.tenantId);
          run.io.stdout(`ok: ${outcome} ${stream} (from ${staging}, which sources ${config.natsStream} filtered to ${filter})\n`);
        }
        run.exitCode = EXIT.ok;
      } finally {
        await nc.close();
      }
    });
}
