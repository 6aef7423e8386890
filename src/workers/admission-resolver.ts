import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { LedgerWriter } from '../ledger/ledger-writer';
import type { Logger } from '../logging/logger';
import type { RequestContext } from '../shared/request-context';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { decideSpawn, isAdmissionRefusal, shapeOf } from '../vms/spawn-admission';

/** Each resend is a request of its own: a teardown it starts is told apart from one an earlier request started. */
const resolverContext = (): RequestContext => ({
  request_id: `admission-resolver:${randomUUID()}`,
  actor_token_id: null,
  actor_scope: 'system:admission-resolver',
  source_ip: null,
  user_agent: null,
});

/** Past the API's Temporal deadline (10 s), so no API is still waiting for these answers. */
export const DEFAULT_RESOLVE_AFTER_MS = 15_000;
export const DEFAULT_RESOLVE_EVERY_MS = 5_000;
const RESOLVE_CONCURRENCY = 8;

export interface ResolverDeps {
  db: Kysely<Database>;
  ledger: LedgerWriter;
  workflows: TenantWorkflowGateway;
  log: Logger;
  now: () => Date;
}

/**
 * Asks the tenant workflows for the decisions nobody heard (docs/admission-protocol.md): a request
 * recorded `requested` whose API died, hung or timed out before the answer, and a destroy recorded
 * `destroying` that the workflow may never have received. Each is sent again under its own update
 * id: a request the workflow decided is answered from that decision; one it never saw is decided now,
 * against the quota like any other (refused: the row becomes `rejected`). Nothing is adopted.
 */
export async function resolveUndecided(deps: ResolverDeps, olderThanMs: number, limit = 200): Promise<{ spawns: number; destroys: number; failed: number }> {
  const before = new Date(deps.now().getTime() - olderThanMs);
  const rows = await deps.db
    .selectFrom('vms')
    .selectAll()
    .where('status', 'in', ['requested', 'destroying'])
    .where('updated_at', '<', before)
    .orderBy(sql`updated_at`)
    .limit(limit)
    .execute();
  const outcome = { spawns: 0, destroys: 0, failed: 0 };
  const resolve = async (row: (typeof rows)[number]) => {
    try {
      if (row.status === 'requested') {
        outcome.spawns++;
        await decideSpawn(deps, row.tenant_id, {
          vm_id: row.vm_id,
          shape: shapeOf(row),
          created_at: row.created_at.toISOString(),
          context: resolverContext(),
          attempt: row.admission_attempt,
        });
      } else {
        outcome.destroys++;
        await deps.workflows.destroy(row.tenant_id, row.vm_id, resolverContext(), row.storage_gb);
      }
    } catch (error) {
      // A refusal is a decision (recorded by decideSpawn); anything else is retried next round.
      if (!isAdmissionRefusal(error)) {
        outcome.failed++;
        deps.log.warn({ err: error, tenant_id: row.tenant_id, vm_id: row.vm_id }, 'undecided VM not resolved; next round retries');
      }
    }
  };
  // Several at once: one tenant whose workflow does not answer (each call waits its deadline) must not hold up the others.
  const queue = [...rows];
  await Promise.all(
    Array.from({ length: Math.min(RESOLVE_CONCURRENCY, queue.length) }, async () => {
      for (let row = queue.shift(); row; row = queue.shift()) await resolve(row);
    }),
  );
  return outcome;
}

/** Runs resolveUndecided every `everyMs`, one round at a time. */
export function startAdmissionResolver(
  deps: ResolverDeps,
  { everyMs = DEFAULT_RESOLVE_EVERY_MS, olderThanMs = DEFAULT_RESOLVE_AFTER_MS } = {},
): { stop(): void } {
  let round: Promise<void> | null = null;
  const run = () => {
    round ??= resolveUndecided(deps, olderThanMs)
      .then((outcome) => {
        if (outcome.spawns + outcome.destroys > 0) deps.log.info(outcome, 'undecided VMs sent to their workflows');
      })
      .catch((error: unknown) => deps.log.warn({ err: error }, 'admission resolver round failed; will retry'))
      .finally(() => (round = null));
  };
  const timer = setInterval(run, everyMs);
  timer.unref();
  run();
  return { stop: () => clearInterval(timer) };
}
