import type { Kysely } from 'kysely';
import type { Database } from '../../src/db/tables';
import { HorizonStarvationWatch } from '../../src/ledger/horizon-starvation';
import { createLogger } from '../../src/logging/logger';

/**
 * A reader of the ledger in seq order that cannot reach the commit horizon is never silent: after
 * `warnAfterMs` it warns (naming the writers in the way), again every `repeatMs` while it lasts,
 * and says when it moves again. The event relay uses this; the signer's alarm shares the rules
 * (test/integration/ledger-checkpoint-liveness.test.ts runs it against Postgres).
 */
describe('starvation warnings of a commit-horizon reader', () => {
  test('when the horizon stays out of reach, then it warns after warnAfterMs, repeats every repeatMs, and says when the horizon moves again', async () => {
    let now = 0;
    const lines: Array<{ level: string; msg: string; obj: Record<string, unknown> }> = [];
    const log = createLogger({ name: 'relay', level: 'silent' });
    for (const level of ['warn', 'info'] as const) log[level] = ((obj: Record<string, unknown>, msg: string) => void lines.push({ level, msg, obj })) as never;
    // No database here: the writers are then named by id and backend only.
    const watch = new HorizonStarvationWatch({ db: {} as Kysely<Database>, log, reader: 'event relay', warnAfterMs: 10_000, repeatMs: 60_000, now: () => now });
    const starved = { seq: null, drawn: '42', waitingFor: [{ xid: '1234', pid: 77 }] };

    for (const at of [0, 5_000, 9_999]) {
      now = at;
      expect(await watch.observe(starved)).toBeNull();
    }
    expect(lines).toEqual([]);
    now = 10_000;
    await watch.observe(starved);
    now = 30_000;
    await watch.observe(starved);
    now = 70_000;
    await watch.observe(starved);
    expect(lines.map((line) => [line.level, line.obj.starved_seconds])).toEqual([
      ['warn', 10],
      ['warn', 70],
    ]);
    expect(lines[0]).toMatchObject({ msg: expect.stringMatching(/^event relay starved: /), obj: { drawn_seq: '42', waiting_for: [{ xid: '1234', pid: 77 }] } });

    now = 71_000;
    expect(await watch.observe({ seq: '42' })).toBe('42');
    expect(lines.at(-1)).toMatchObject({ level: 'info', msg: expect.stringMatching(/^event relay no longer starved/) });
    now = 72_000;
    await watch.observe({ seq: '43' });
    expect(lines).toHaveLength(3);
  });
});
