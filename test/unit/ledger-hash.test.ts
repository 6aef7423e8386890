import { createHash } from 'node:crypto';
import {
  GOLDEN_ENTRIES,
  GOLDEN_ENTRY_1_PREIMAGE,
  GOLDEN_HASH_3_FIRST_OF_ITS_CHAIN,
  GOLDEN_HASHES,
  GOLDEN_TENANT_CHAIN,
} from '../fixtures/ledger-golden-vectors';
import { canonicalJson, entryHash, GENESIS_HASH, tenantEntryHash, type HashedFields } from '../../src/ledger/ledger-hash';

describe('canonicalJson (RFC 8785)', () => {
  test('when given the RFC 8785 section 3.2.2 sample, then it produces the RFC output', () => {
    const input = {
      // eslint-disable-next-line no-loss-of-precision -- the RFC sample is written with more digits than a double holds
      numbers: [333333333.33333329, 1e30, 4.5, 2e-3, 0.000000000000000000000000001],
      string: '\u20ac$\u000F\u000aA\'\u0042\u0022\u005c\\"/',
      literals: [null, true, false],
    };
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('when keys are non-ASCII, then they are sorted by UTF-16 code units', () => {
    // RFC 8785 section 3.2.3 ordering example.
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    const keys = canonicalJson(input)
      .match(/"(?:[^"\\]|\\.)*":/g)!
      .map((k) => JSON.parse(k.slice(0, -1)) as string);
    expect(keys).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
  });

  test('when values are undefined, then object members are skipped and array items become null', () => {
    expect(canonicalJson({ b: undefined, a: [undefined, 1] })).toBe('{"a":[null,1]}');
  });

  test('when a value cannot be represented, then it throws', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/not allowed/);
    expect(() => canonicalJson({ n: Infinity })).toThrow(/not allowed/);
    expect(() => canonicalJson({ s: '\ud800' })).toThrow(/lone surrogate/);
  });
});

describe('entryHash', () => {
  const fields: HashedFields = {
    seq: '1',
    event_id: '6f1c1a4e-3b7e-4c59-9b61-2f0d7e1c9a10',
    tenant_id: 'acme-corp',
    vm_id: null,
    event_type: 'TENANT_CREATED',
    occurred_at: new Date('2026-06-14T09:00:00.000Z'),
    actor_token_id: 'tok_admin_1',
    actor_scope: 'service:admin',
    source_ip: '127.0.0.1',
    user_agent: 'curl/8.5.0',
    request_id: 'req-1',
    details: { max_vms: 10, display_name: 'Acme' },
  };

  test('when a stored row (with prev_hash and hash) is hashed, then only the covered fields count', () => {
    const hash = entryHash(GENESIS_HASH, fields);
    expect(entryHash(GENESIS_HASH, { ...fields, prev_hash: GENESIS_HASH, hash } as HashedFields)).toBe(hash);
  });

  test('when details keys are reordered, then the hash is the same; when any field or the previous hash changes, then it differs', () => {
    const hash = entryHash(GENESIS_HASH, fields);
    expect(entryHash(GENESIS_HASH, { ...fields, details: { display_name: 'Acme', max_vms: 10 } })).toBe(hash);
    expect(entryHash(GENESIS_HASH, { ...fields, details: { display_name: 'Acme', max_vms: 11 } })).not.toBe(hash);
    expect(entryHash(GENESIS_HASH, { ...fields, occurred_at: new Date('2026-06-14T09:00:00.001Z') })).not.toBe(hash);
    expect(entryHash('f'.repeat(64), fields)).not.toBe(hash);
  });
});

describe('golden hash vectors', () => {
  test('when the fixed entries are chained from the genesis hash, then each hash is the pinned one', () => {
    let prev = GENESIS_HASH;
    const hashes = GOLDEN_ENTRIES.map((entry) => (prev = entryHash(prev, entry)));
    expect(hashes).toEqual(GOLDEN_HASHES);
  });

  test('when the entries are linked within their own chains (since 2026_11_27_0007), then entry 3, first of the platform chain, hashes from the genesis to the pinned value', () => {
    expect(entryHash(GENESIS_HASH, GOLDEN_ENTRIES[2]!)).toBe(GOLDEN_HASH_3_FIRST_OF_ITS_CHAIN);
    expect(entryHash(GOLDEN_HASHES[0]!, GOLDEN_ENTRIES[1]!)).toBe(GOLDEN_HASHES[1]); // same chain as entry 1
  });

  test('when entry 1 is hashed, then the preimage is exactly the hand-written prev_hash, newline and canonical JSON', () => {
    expect(createHash('sha256').update(GOLDEN_ENTRY_1_PREIMAGE).digest('hex')).toBe(GOLDEN_HASHES[0]);
  });

  const HASHED_FIELDS = [
    'seq',
    'event_id',
    'tenant_id',
    'vm_id',
    'event_type',
    'occurred_at',
    'actor_token_id',
    'actor_scope',
    'source_ip',
    'user_agent',
    'request_id',
    'details',
  ] as const;

  test('when any one hashed field of a golden entry changes, then its hash changes', () => {
    const entry = GOLDEN_ENTRIES[1]!;
    const changed: Record<(typeof HASHED_FIELDS)[number], HashedFields> = {
      seq: { ...entry, seq: '22' },
      event_id: { ...entry, event_id: '0b6a1f52-8f0e-4d8c-9a51-6a3f1d2c7eff' },
      tenant_id: { ...entry, tenant_id: 'globex' },
      vm_id: { ...entry, vm_id: null },
      event_type: { ...entry, event_type: 'VM_RUNNING' },
      occurred_at: { ...entry, occurred_at: new Date(entry.occurred_at.getTime() + 1) },
      actor_token_id: { ...entry, actor_token_id: 'tok_other' },
      actor_scope: { ...entry, actor_scope: 'vm:read' },
      source_ip: { ...entry, source_ip: '203.0.113.8' },
      user_agent: { ...entry, user_agent: null },
      request_id: { ...entry, request_id: 'req-other' },
      details: { ...entry, details: { ...entry.details, z: 2 } },
    };
    for (const field of HASHED_FIELDS) {
      expect([field, entryHash(GOLDEN_HASHES[0]!, changed[field])]).not.toEqual([field, GOLDEN_HASHES[1]]);
    }
    expect(entryHash('f'.repeat(64), entry)).not.toBe(GOLDEN_HASHES[1]);
  });
});

describe('golden tenant chain vectors', () => {
  const tenantFields = (i: number) => {
    const { seq: _seq, ...entry } = GOLDEN_ENTRIES[i]!;
    return { ...entry, tenant_seq: GOLDEN_TENANT_CHAIN[i]!.tenant_seq };
  };

  test('when the fixed entries are chained per tenant, then each tenant hash is the pinned one', () => {
    GOLDEN_TENANT_CHAIN.forEach((expected, i) => {
      expect(tenantEntryHash(expected.tenant_prev_hash, tenantFields(i))).toBe(expected.tenant_hash);
    });
  });

  test("when any field a tenant sees changes, then the tenant hash changes; the global seq and an operator's source fields do not count", () => {
    const entry = tenantFields(1);
    const prev = GOLDEN_TENANT_CHAIN[1]!.tenant_prev_hash;
    const pinned = GOLDEN_TENANT_CHAIN[1]!.tenant_hash;
    const changes: Array<Partial<typeof entry>> = [
      { tenant_seq: '3' },
      { event_id: '0b6a1f52-8f0e-4d8c-9a51-6a3f1d2c7eff' },
      { tenant_id: 'globex' },
      { vm_id: null },
      { event_type: 'VM_RUNNING' },
      { occurred_at: new Date(entry.occurred_at.getTime() + 1) },
      { actor_token_id: 'tok_other' },
      { actor_scope: 'vm:read' },
      { source_ip: '203.0.113.8' },
      { user_agent: null },
      { request_id: 'req-other' },
      { details: { ...entry.details, z: 2 } },
    ];
    for (const change of changes) expect([change, tenantEntryHash(prev, { ...entry, ...change })]).not.toEqual([change, pinned]);
    expect(tenantEntryHash('f'.repeat(64), entry)).not.toBe(pinned);
    // The operator's action (entry 1): its source is shown to the operator only, so not hashed here.
    const operator = tenantFields(0);
    expect(tenantEntryHash(GENESIS_HASH, { ...operator, source_ip: '198.51.100.1', user_agent: 'other' })).toBe(GOLDEN_TENANT_CHAIN[0]!.tenant_hash);
    expect(tenantEntryHash(GENESIS_HASH, { ...operator, seq: '99' } as typeof operator)).toBe(GOLDEN_TENANT_CHAIN[0]!.tenant_hash);
  });
});
