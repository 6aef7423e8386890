import { createActiveTokenCache } from '../../src/auth/active-token-cache';
import type { ActiveToken } from '../../src/auth/token.repository';

const token = (expires_at: Date | null = null): ActiveToken => ({ token_id: 'tok_a', tenant_id: 't', scope: 'vm:read', expires_at, token_hash: 'h', api_rate_limit_rpm: 60, subject_pubkey: null, key_binding: 'none' });

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
});
