import { createActiveTokenCache } from '../../src/auth/active-token-cache';
import type { ActiveToken } from '../../src/auth/token.repository';

const token = (expires_at: Date | null = null): ActiveToken => ({
  token_id: 'tok_a',
  tenant_id: 't',
  scope: 'vm:read',
  expires_at,
  token_hash: 'h',
  api_rate_limit_rpm: 60,
  subject_pubkey: null,
  key_binding: 'none',
});

describe('active token cache', () => {
  const now = new Date('2026-11-27T12:00:00Z');

  test('when a token was cached, then it is served until its TTL passes and not after', () => {
    let clock = 0;
    const cache = createActiveTokenCache(500, () => clock);
    cache.set('h', token());
    clock = 499;
    expect(cache.get('h', now)?.token_id).toBe('tok_a');
    clock = 500;
    expect(cache.get('h', now)).toBeUndefined();
  });

  test('when the cached token expires before its TTL, then it is not served', () => {
    const cache = createActiveTokenCache(500, () => 0);
    cache.set('h', token(new Date(now.getTime() + 1)));
    expect(cache.get('h', now)).toBeDefined();
    expect(cache.get('h', new Date(now.getTime() + 1))).toBeUndefined();
  });

  test('when cleared or with TTL 0, then nothing is served', () => {
    const cache = createActiveTokenCache(500, () => 0);
    cache.set('h', token());
    cache.clear();
    expect(cache.get('h', now)).toBeUndefined();
    const off = createActiveTokenCache(0, () => 0);
    off.set('h', token());
    expect(off.get('h', now)).toBeUndefined();
  });

  describe('with a revocation watch', () => {
    let clock = 0;
    let heard = Number.NEGATIVE_INFINITY;
    const watch = { heardUpTo: () => heard };
    beforeEach(() => {
      clock = 0;
      heard = Number.NEGATIVE_INFINITY;
    });
    /** A miss, then the lookup's result cached: what authenticate does. */
    const lookUp = (cache: ReturnType<typeof createActiveTokenCache>) => {
      expect(cache.get('h', now)).toBeUndefined();
      cache.set('h', token());
    };

    test('when the watch keeps hearing, then an entry is served past the short lifetime, up to the long one', () => {
      const cache = createActiveTokenCache(500, () => clock, watch, 60_000);
      lookUp(cache);
      clock = 30_000;
      heard = 29_800;
      expect(cache.get('h', now)?.token_id).toBe('tok_a');
      clock = 60_000;
      heard = 59_900;
      expect(cache.get('h', now)).toBeUndefined();
    });

    test('when the watch has heard nothing for the short lifetime, then an entry older than that is not served', () => {
      const cache = createActiveTokenCache(500, () => clock, watch, 60_000);
      lookUp(cache);
      clock = 2_000;
      heard = 1_499; // its last answered heartbeat was sent 501 ms ago
      expect(cache.get('h', now)).toBeUndefined();
    });

    test('when the cache is cleared while a lookup is under way, then what that lookup found lives only the short lifetime', () => {
      const cache = createActiveTokenCache(500, () => clock, watch, 60_000);
      expect(cache.get('h', now)).toBeUndefined();
      cache.clear(); // a revocation heard while the lookup read the token
      cache.set('h', token());
      clock = 600;
      heard = 590;
      expect(cache.get('h', now)).toBeUndefined();
      // The next lookup, after the clear, is long-lived again.
      lookUp(cache);
      clock = 5_000;
      heard = 4_900;
      expect(cache.get('h', now)?.token_id).toBe('tok_a');
    });
  });
});
