import { needsUpgrade } from '../../src/temporal/tenant-workflow-upgrade';
import { CURRENT_CODE_PATCH, CURRENT_STATE_VERSION } from '../../src/shared/tenant-workflow.versions';

const run = (patches: string[] | null, carriedStateVersion: number | null) => ({ workflowId: 'tenant-x', runId: 'r', patches, carriedStateVersion });

describe('which runs the upgrade procedure still has to move', () => {
  test('when a run was handed a state only older code carries, then it needs another continue-as-new, even before its first task ran (under load the procedure lists it then)', () => {
    expect(needsUpgrade(run(null, CURRENT_STATE_VERSION - 1))).toBe(true);
    expect(needsUpgrade(run(['tenant-state-v2', CURRENT_CODE_PATCH], 1))).toBe(true);
  });

  test('when a run runs the current code on a current state, or has not run a task and carries none, then it is left alone', () => {
    expect(needsUpgrade(run(['tenant-state-v2', CURRENT_CODE_PATCH], CURRENT_STATE_VERSION))).toBe(false);
    expect(needsUpgrade(run(['tenant-state-v2', CURRENT_CODE_PATCH], null))).toBe(false);
    expect(needsUpgrade(run(null, null))).toBe(false);
  });

  test('when a run runs frozen code, then it needs a continue-as-new', () => {
    expect(needsUpgrade(run(['tenant-state-v2'], null))).toBe(true);
    expect(needsUpgrade(run([], null))).toBe(true);
  });
});
