import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { temporal as proto } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { testBundle } from '../helpers/workflow-bundle';

/**
 * Replays recorded tenant-workflow histories against the current workflow code: those of the
 * version-1 workflow (runs already going when state version 2 was deployed), those of the
 * state-version-2 workflow (runs already going when admission v3 was deployed) and those of the
 * current one (spawn and destroy, quota refusals and versions, cancel on destroy, concurrent spawns,
 * rebuild from a non-empty Postgres with undecided requests, boot deadline, continue-as-new with a VM
 * still booting, a run continued from a state-version-2 run), and runs of each version that the
 * upgrade procedure (docs/upgrades.md) signalled to continue as new. A change that would break
 * running workflows fails here with a DeterminismViolationError instead of in production.
 * Record them with `node --import tsx scripts/record-histories.ts` (the upgrade-*.json ones with
 * RECORD_UPGRADE_HISTORIES=1 npx jest test/workflows/tenant-workflow-upgrade.test.ts).
 */
const HISTORIES_DIR = path.join(__dirname, 'histories');
/**
 * Loads a history written by scripts/record-histories.ts (the History message's own toJSON). Not the
 * SDK's historyFromJSON: in this install @temporalio/common and @temporalio/proto each carry their own
 * protobufjs copy, and its proto3-JSON path then fails with "type must be a Type".
 */
function loadHistory(file: string): proto.api.history.v1.History {
  return proto.api.history.v1.History.fromObject(JSON.parse(readFileSync(file, 'utf8')));
}

const files = readdirSync(HISTORIES_DIR)
  .filter((name) => name.endsWith('.json'))
  .sort();

jest.setTimeout(120_000);

describe('tenant workflow replay', () => {
  beforeAll(() => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  });

  test('the recorded histories cover the scenarios the workflow must keep replaying', () => {
    // Recorded by the version-1 workflow, before the tenant-state-v2 patch: runs started by that code.
    expect(files).toEqual(
      expect.arrayContaining([
        'spawn-destroy.json',
        'over-quota-refusal.json',
        'destroy-while-provisioning.json',
        'continue-as-new.run1.json',
        'continue-as-new.run2.json',
      ]),
    );
    // Recorded by the state-version-2 workflow, before the admission-v3 patch: runs started by that code.
    expect(files).toEqual(
      expect.arrayContaining([
        'v2-spawn-destroy.json',
        'v2-over-quota-refusal.json',
        'v2-cancel-on-destroy.json',
        'v2-rebuild-from-postgres.json',
        'v2-boot-timeout.json',
        'v2-continue-as-new.run1.json',
        'v2-continue-as-new.run2.json',
        'v2-concurrent-spawns.json',
      ]),
    );
    // Recorded by the current workflow (admission v3).
    expect(files).toEqual(
      expect.arrayContaining([
        'v3-spawn-destroy.json',
        'v3-over-quota-refusal.json',
        'v3-cancel-on-destroy.json',
        'v3-concurrent-spawns.json',
        'v3-rebuild-from-postgres.json',
        'v3-boot-timeout.json',
        'v3-continue-as-new.run1.json',
        'v3-continue-as-new.run2.json',
        'v3-migrated-from-v2.json',
      ]),
    );
    // Recorded by tenant-workflow-upgrade.test.ts: runs of each code version asked to continue as new by the upgrade procedure.
    expect(files).toEqual(
      expect.arrayContaining([
        'upgrade-v1-signalled.json',
        'upgrade-v2-signalled.json',
        'upgrade-v3-from-v1-signalled.json',
        'upgrade-v3-from-v2-signalled.json',
      ]),
    );
  });

  test('when the recorded histories are replayed against the current code, then none is non-deterministic', async () => {
    const histories = files.map((name) => ({ workflowId: name.replace(/\.json$/, ''), history: loadHistory(path.join(HISTORIES_DIR, name)) }));
    const results: Array<{ workflowId: string; error: string | null }> = [];
    for await (const result of Worker.runReplayHistories({ workflowBundle: await testBundle() }, histories)) {
      results.push({ workflowId: result.workflowId, error: result.error ? `${result.error.name}: ${result.error.message}` : null });
    }
    expect(results).toEqual(histories.map(({ workflowId }) => ({ workflowId, error: null })));
  });
});
