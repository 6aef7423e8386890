import { startTestStack } from '../helpers/test-stack';

/** Counts the LedgerWriters built in this test file's process. */
const mockWriters = { built: 0 };
jest.mock('../../src/ledger/ledger-writer', () => {
  const actual = jest.requireActual('../../src/ledger/ledger-writer');
  class CountedLedgerWriter extends actual.LedgerWriter {
    constructor(...args: ConstructorParameters<typeof actual.LedgerWriter>) {
      super(...args);
      mockWriters.built++;
    }
  }
  return { ...actual, LedgerWriter: CountedLedgerWriter };
});

test('when the worker is built, then it holds one LedgerWriter (one group-commit queue) for every activity and the admission resolver', async () => {
  const stack = await startTestStack({ withWorker: false });
  try {
    const before = mockWriters.built;
    await stack.startWorker();
    expect(mockWriters.built - before).toBe(1);
  } finally {
    await stack.close();
  }
});
