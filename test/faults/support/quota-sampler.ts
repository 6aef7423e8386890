/**
 * Samples, every 100 ms while a fault test runs, how many VMs of each tenant hold quota in Postgres
 * (provisioning, running, destroying), so a test can say the quota held at every instant, not only
 * at the end.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely } from 'kysely';
import type { Database } from '../../../src/db/tables';
import { STATUSES_HOLDING_QUOTA } from '../../../src/vms/vm.repository';

export interface QuotaSamples {
  /** The most VMs holding quota seen at once, per tenant. */
  readonly max: Map<string, number>;
  /** How many samples were taken (a Postgres that did not answer skips a sample). */
  samples: number;
  stop(): Promise<void>;
}

export function sampleQuota(db: Kysely<Database>, tenantIds: readonly string[], everyMs = 100): QuotaSamples {
  const max = new Map(tenantIds.map((id) => [id, 0]));
  let stopped = false;
  const result: QuotaSamples = {
    max,
    samples: 0,
    async stop() {
      stopped = true;
      await loop;
    },
  };
  const loop = (async () => {
    while (!stopped) {
      try {
        const rows = await db
          .selectFrom('vms')
          .select(['tenant_id', (eb) => eb.fn.countAll<string>().as('held')])
          .where('tenant_id', 'in', [...tenantIds])
          .where('status', 'in', [...STATUSES_HOLDING_QUOTA])
          .groupBy('tenant_id')
          .execute();
        for (const row of rows) max.set(row.tenant_id, Math.max(max.get(row.tenant_id) ?? 0, Number(row.held)));
        result.samples++;
      } catch {
        /* Postgres away: this sample is skipped */
      }
      await sleep(everyMs);
    }
  })();
  return result;
}
