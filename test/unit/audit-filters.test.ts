import { DEFAULT_LIMIT, parseInstant, parseReadOptions } from '../../src/cli/audit-filters';

function usageError(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a UsageError');
}

describe('parseReadOptions', () => {
  test('when no flags are given, then the query has the default limit, ascending order and JSON output', () => {
    expect(parseReadOptions({})).toEqual({ query: { limit: DEFAULT_LIMIT, order: 'asc' }, format: 'json' });
  });

  test('when the how-to flags are given, then they become equality filters with limit 1', () => {
    expect(parseReadOptions({ filter: ['tenant-id=acme-corp'], 'event-type': 'TENANT_CREATED', limit: '1' })).toEqual({
      query: { tenant_id: 'acme-corp', event_type: 'TENANT_CREATED', limit: 1, order: 'asc' },
      format: 'json',
    });
  });

  test('when every filter key, times, order and format are given, then each reaches the query', () => {
    const { query, format } = parseReadOptions({
      filter: ['tenant-id=acme-corp', 'vm-id=vm=odd', 'event-type=VM_RUNNING'],
      since: '2026-06-14',
      until: '2026-06-14T12:30:00+02:00',
      limit: '10000',
      order: 'desc',
      format: 'table',
    });
    expect(query).toEqual({
      tenant_id: 'acme-corp',
      vm_id: 'vm=odd', // only the first = separates key and value
      event_type: 'VM_RUNNING',
      since: new Date('2026-06-14T00:00:00.000Z'),
      until: new Date('2026-06-14T10:30:00.000Z'),
      limit: 10000,
      order: 'desc',
    });
    expect(format).toBe('table');
  });

  test('when the same filter is repeated with the same value, then it is accepted', () => {
    expect(parseReadOptions({ filter: ['event-type=VM_RUNNING'], 'event-type': 'VM_RUNNING' }).query.event_type).toBe('VM_RUNNING');
  });

  test.each([
    [{ filter: ['colour=blue'] }, /unknown filter key "colour"; use one of tenant-id, vm-id, event-type/],
    [{ filter: ['tenant_id=acme-corp'] }, /unknown filter key "tenant_id"/],
    [{ filter: ['constructor=x'] }, /unknown filter key "constructor"/],
    [{ filter: ['tenant-id'] }, /--filter must look like key=value/],
    [{ filter: ['=acme-corp'] }, /--filter must look like key=value/],
    [{ filter: ['vm-id='] }, /filter vm-id needs a value/],
    [{ filter: ['tenant-id=Acme Corp'] }, /tenant-id must be 3-63 lowercase/],
    [{ filter: ['tenant-id=a', 'tenant-id=b'] }, /tenant-id must be/],
    [{ filter: ['tenant-id=acme-corp', 'tenant-id=globex'] }, /conflicting values for tenant-id: "acme-corp" and "globex"/],
    [{ filter: ['event-type=VM_FAILED'], 'event-type': 'VM_RUNNING' }, /conflicting values for event-type/],
    [{ 'event-type': 'TENANT_CREATE' }, /unknown event type "TENANT_CREATE"; known types: TENANT_CREATED/],
    [{ limit: '0' }, /--limit must be a whole number from 1 to 10000, got "0"/],
    [{ limit: '10001' }, /--limit must be a whole number from 1 to 10000/],
    [{ limit: '1.5' }, /--limit/],
    [{ limit: '1e3' }, /--limit/],
    [{ limit: '' }, /--limit/],
    [{ order: 'newest' }, /--order must be one of asc, desc/],
    [{ format: 'xml' }, /--format must be one of json, table/],
    [{ since: '2026-06-14T10:00:00Z', until: '2026-06-14T10:00:00Z' }, /--since must be earlier than --until/],
  ])('when given %j, then it is refused with a UsageError', (raw, message) => {
    const error = usageError(() => parseReadOptions(raw));
    expect(error.name).toBe('UsageError');
    expect(error.message).toMatch(message);
  });
});

describe('parseInstant', () => {
  test.each([
    ['2026-06-14', '2026-06-14T00:00:00.000Z'],
    ['2026-06-14T09:30Z', '2026-06-14T09:30:00.000Z'],
    ['2026-06-14T09:30:15.250Z', '2026-06-14T09:30:15.250Z'],
    ['2026-06-14T09:30:15-05:00', '2026-06-14T14:30:15.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
  ])('when given %s, then it is the instant %s', (raw, iso) => {
    expect(parseInstant('--since', raw).toISOString()).toBe(iso);
  });

  test.each([
    ['2026-06-14T09:30', /needs a time zone offset/],
    ['2026-06-14 09:30Z', /must be an ISO 8601 date/],
    ['June 14 2026', /must be an ISO 8601 date/],
    ['1718357400', /must be an ISO 8601 date/],
    ['2026-02-30', /not a valid date/],
    ['2025-02-29', /not a valid date/],
    ['2026-13-01', /not a valid date/],
    ['2026-06-14T24:30Z', /not a valid date/],
  ])('when given %s, then it is refused', (raw, message) => {
    const error = usageError(() => parseInstant('--since', raw));
    expect(error.name).toBe('UsageError');
    expect(error.message).toMatch(message);
  });
});
