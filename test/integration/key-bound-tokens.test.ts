/**
 * Issue 11, part 3: tokens bound to their key. A token issued with `key_binding: "required"` works
 * only on requests signed (RFC 9421) with the Ed25519 key of its subject_pubkey, against the real
 * API, Postgres and a second API process sharing the database.
 */
import { createHash, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { keyIdOf } from '../../src/auth/request-signature-profile';
import { signedHeaders, signFetchRequest, signingKeyFrom, type RequestSigningKey, type SigningOptions } from '../../src/client/request-signing';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { createTenant, startTestStack, type TestStack } from '../helpers/test-stack';

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

/** A fresh Ed25519 key: its signing form and its public key in the form subject_pubkey takes. */
function newKey(): { signing: RequestSigningKey; pubkey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { signing: signingKeyFrom(privateKey), pubkey: keyIdOf(createPublicKey(privateKey)) };
}

async function answer(response: Response): Promise<Answer> {
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

describe('key-bound tokens', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack({ withWorker: false });
  });
  afterAll(async () => {
    await stack?.close();
  });

  interface SignedCall {
    method: string;
    path: string;
    token: string;
    key: RequestSigningKey;
    body?: unknown;
    options?: SigningOptions;
    baseUrl?: string;
  }

  /** The headers and body of a signed request, so a test can send them (again, or altered). */
  async function signedRequest({ method, path, token, key, body, options, baseUrl }: SignedCall) {
    const url = `${baseUrl ?? stack.apiUrl}${path}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(text ? { 'content-type': 'application/json' } : {}) };
    return { url, method, body: text, headers: await signedHeaders({ method, url, headers, body: text }, key, options) };
  }

  async function send(request: { url: string; method: string; headers: Record<string, string>; body?: string }): Promise<Answer> {
    return answer(await fetch(request.url, { method: request.method, headers: request.headers, body: request.body }));
  }

  const signedCall = async (call: SignedCall) => send(await signedRequest(call));

  function expectRefused(res: Answer, code: string): void {
    expect({ status: res.status, code: res.body?.code }).toEqual({ status: 401, code });
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.headers.get('www-authenticate')).toBe(`Bearer realm="vm-tenant", error="invalid_token", error_description="${code}"`);
    expect(res.headers.get('accept-signature')).toBe('vmt=("@method" "@target-uri" "authorization" "content-digest");created;nonce;alg="ed25519"');
  }

  /** A tenant, and a vm:write token bound to a new key, issued by the tenant's (unbound) admin. */
  async function boundToken(scope = 'service:tenant-admin') {
    const { tenantId, token: admin } = await createTenant(stack);
    const key = newKey();
    const issued = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: admin,
      body: { subject_pubkey: key.pubkey, scope, expires_in_seconds: 600, key_binding: 'required' },
    });
    expect(issued.status).toBe(201);
    return { tenantId, admin, key, token: issued.body.token as string, tokenId: issued.body.token_id as string, issued: issued.body };
  }

  test('when a token is issued with key_binding required, then the record says so and the ledger entry too', async () => {
    const { tenantId, tokenId, issued, key } = await boundToken();
    expect(issued).toMatchObject({ key_binding: 'required', subject_pubkey: key.pubkey });
    const audit = await stack.request('GET', `/v1/audit?tenant_id=${tenantId}&event_type=TOKEN_ISSUED`, { token: stack.adminToken });
    expect(audit.body.items.find((e: any) => e.details.token_id === tokenId).details.key_binding).toBe('required');
  });

  test('when a bound token is stolen and used without the key, as with plain curl, then 401 signature_required', async () => {
    const { token } = await boundToken();
    expectRefused(await answer(await fetch(`${stack.apiUrl}/v1/vms`, { headers: { authorization: `Bearer ${token}` } })), 'signature_required');
  });

  test('when the holder signs its requests with the key, then GET and POST (with a body) are accepted', async () => {
    const { token, key, tenantId } = await boundToken();
    expect((await signedCall({ method: 'GET', path: '/v1/vms?limit=5', token, key: key.signing })).status).toBe(200);
    const sub = await signedCall({
      method: 'POST',
      path: `/v1/tenants/${tenantId}/tokens`,
      token,
      key: key.signing,
      body: { subject_pubkey: newKey().pubkey, scope: 'vm:read', expires_in_seconds: 300 },
    });
    expect(sub.status).toBe(201);
  });

  test("when a signed fetch Request is made with signFetchRequest (the typed client's middleware hook), then it is accepted", async () => {
    const { token, key, tenantId } = await boundToken();
    const request = new Request(`${stack.apiUrl}/v1/tenants/${tenantId}/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject_pubkey: newKey().pubkey, scope: 'vm:read', expires_in_seconds: 300 }),
    });
    expect((await answer(await fetch(await signFetchRequest(request, key.signing)))).status).toBe(201);
  });

  test('when a signed request is sent a second time, then the replay is refused with signature_replayed', async () => {
    const { token, key } = await boundToken();
    const request = await signedRequest({ method: 'GET', path: '/v1/vms', token, key: key.signing });
    expect((await send(request)).status).toBe(200);
    expectRefused(await send(request), 'signature_replayed');
  });

  test('when a signature accepted by one API process is replayed to another on the same database, then the other refuses it', async () => {
    // Two API processes behind one proxy: both see the public URI the client signed (X-Forwarded-Host).
    const behindProxy = { ...stack.config, trustedProxies: ['loopback'] };
    const processes: ServedApi[] = [await serveApi(behindProxy), await serveApi(behindProxy)];
    const direct = (api: ServedApi, path: string) => `${api.url}${path}`;
    try {
      const { token, key } = await boundToken();
      const request = await signedRequest({ method: 'GET', path: '/v1/vms', token, key: key.signing, baseUrl: 'http://api.vm-tenant.test' });
      const headers = { ...request.headers, 'x-forwarded-host': 'api.vm-tenant.test', 'x-forwarded-proto': 'http' };
      expect((await send({ ...request, headers, url: direct(processes[0]!, '/v1/vms') })).status).toBe(200);
      expectRefused(await send({ ...request, headers, url: direct(processes[1]!, '/v1/vms') }), 'signature_replayed');
    } finally {
      for (const api of processes) await api.close();
    }
  });

  test('when the signature was created more than the max age (300 s) ago, then 401 signature_expired', async () => {
    const { token, key } = await boundToken();
    expectRefused(
      await signedCall({ method: 'GET', path: '/v1/vms', token, key: key.signing, options: { created: new Date(Date.now() - 400_000) } }),
      'signature_expired',
    );
  });

  test('when REQUEST_SIGNATURE_MAX_AGE_SECONDS is 60, then a signature 120 s old is refused as expired, which the default of 300 s accepts', async () => {
    const { token, key } = await boundToken();
    const strict = await startTestStack({ withWorker: false, configOverrides: { REQUEST_SIGNATURE_MAX_AGE_SECONDS: '60' } });
    try {
      const twoMinutesOld = () => ({ created: new Date(Date.now() - 120_000) });
      expect((await signedCall({ method: 'GET', path: '/v1/vms', token, key: key.signing, options: twoMinutesOld() })).status).toBe(200);
      expectRefused(
        await signedCall({ method: 'GET', path: '/v1/vms', token, key: key.signing, options: twoMinutesOld(), baseUrl: strict.apiUrl }),
        'signature_expired',
      );
    } finally {
      await strict.close();
    }
  });

  test('when the signature claims a created time well ahead of the API clock, then 401 signature_expired', async () => {
    const { token, key } = await boundToken();
    const res = await signedCall({ method: 'GET', path: '/v1/vms', token, key: key.signing, options: { created: new Date(Date.now() + 120_000) } });
    expectRefused(res, 'signature_expired');
    expect(res.body.detail).toMatch(/ahead of the API's clock/);
  });

  test('when the request is signed with another key, then 401 signature_key_mismatch', async () => {
    const { token } = await boundToken();
    expectRefused(await signedCall({ method: 'GET', path: '/v1/vms', token, key: newKey().signing }), 'signature_key_mismatch');
  });

  test("when another key signs but claims the bound key's keyid, then the signature does not verify: 401 signature_invalid", async () => {
    const { token, key } = await boundToken();
    const impostor: RequestSigningKey = { privateKey: newKey().signing.privateKey, keyId: key.signing.keyId };
    expectRefused(await signedCall({ method: 'GET', path: '/v1/vms', token, key: impostor }), 'signature_invalid');
  });

  test('when the body is changed after signing (the signed Content-Digest kept), then 401 content_digest_mismatch and nothing is issued', async () => {
    const { token, key, tenantId, admin } = await boundToken();
    const request = await signedRequest({
      method: 'POST',
      path: `/v1/tenants/${tenantId}/tokens`,
      token,
      key: key.signing,
      body: { subject_pubkey: newKey().pubkey, scope: 'vm:read', expires_in_seconds: 300 },
    });
    const tampered = { ...request, body: JSON.stringify({ subject_pubkey: newKey().pubkey, scope: 'service:tenant-admin', expires_in_seconds: 300 }) };
    tampered.headers = { ...request.headers, 'content-length': String(Buffer.byteLength(tampered.body)) };
    expectRefused(await send(tampered), 'content_digest_mismatch');
    const tokens = await stack.request('GET', `/v1/tenants/${tenantId}/tokens`, { token: admin });
    expect(tokens.body.items).toHaveLength(2);
  });

  test('when the Content-Digest is recomputed for the changed body, then the signature no longer verifies: 401 signature_invalid', async () => {
    const { token, key, tenantId } = await boundToken();
    const request = await signedRequest({
      method: 'POST',
      path: `/v1/tenants/${tenantId}/tokens`,
      token,
      key: key.signing,
      body: { subject_pubkey: newKey().pubkey, scope: 'vm:read', expires_in_seconds: 300 },
    });
    const body = JSON.stringify({ subject_pubkey: newKey().pubkey, scope: 'vm:write', expires_in_seconds: 300 });
    const headers = { ...request.headers, 'content-digest': `sha-256=:${createHash('sha256').update(body).digest('base64')}:` };
    expectRefused(await send({ ...request, body, headers }), 'signature_invalid');
  });

  test('when a signed request is sent to another URI or with another method, then 401 signature_invalid', async () => {
    const { token, key } = await boundToken();
    const request = await signedRequest({ method: 'GET', path: '/v1/vms?status=running', token, key: key.signing });
    expectRefused(await send({ ...request, url: `${stack.apiUrl}/v1/vms?status=failed` }), 'signature_invalid');
    expectRefused(await send({ ...request, method: 'DELETE', url: `${stack.apiUrl}/v1/vms/00000000-0000-4000-8000-000000000000` }), 'signature_invalid');
  });

  test('when a signature is moved to another token bound to the same key, then 401 signature_invalid (the token is signed)', async () => {
    const { token, key, tenantId, admin } = await boundToken();
    const other = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token: admin,
      body: { subject_pubkey: key.pubkey, scope: 'vm:read', expires_in_seconds: 600, key_binding: 'required' },
    });
    const request = await signedRequest({ method: 'GET', path: '/v1/vms', token, key: key.signing });
    expectRefused(await send({ ...request, headers: { ...request.headers, authorization: `Bearer ${other.body.token}` } }), 'signature_invalid');
  });

  test('when the signature leaves out the nonce, the digest or the token, then 401 signature_malformed', async () => {
    const { token, key } = await boundToken();
    const request = await signedRequest({ method: 'GET', path: '/v1/vms', token, key: key.signing });
    const withoutNonce = request.headers['signature-input']!.replace(/;nonce="[^"]*"/, '');
    expectRefused(await send({ ...request, headers: { ...request.headers, 'signature-input': withoutNonce } }), 'signature_malformed');
    const withoutDigest = request.headers['signature-input']!.replace(' "content-digest"', '');
    expectRefused(await send({ ...request, headers: { ...request.headers, 'signature-input': withoutDigest } }), 'signature_malformed');
    const withoutToken = request.headers['signature-input']!.replace(' "authorization"', '');
    expectRefused(await send({ ...request, headers: { ...request.headers, 'signature-input': withoutToken } }), 'signature_malformed');
  });

  test('when a bound token issues a sub-token, then the sub-token is bound to its own subject_pubkey', async () => {
    const { token, key, tenantId } = await boundToken();
    const deviceKey = newKey();
    const issued = await signedCall({
      method: 'POST',
      path: `/v1/tenants/${tenantId}/tokens`,
      token,
      key: key.signing,
      body: { subject_pubkey: deviceKey.pubkey, scope: 'vm:read', expires_in_seconds: 300 },
    });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ key_binding: 'required', subject_pubkey: deviceKey.pubkey });
    const sub = issued.body.token as string;
    expectRefused(await answer(await fetch(`${stack.apiUrl}/v1/vms`, { headers: { authorization: `Bearer ${sub}` } })), 'signature_required');
    expectRefused(await signedCall({ method: 'GET', path: '/v1/vms', token: sub, key: key.signing }), 'signature_key_mismatch');
    expect((await signedCall({ method: 'GET', path: '/v1/vms', token: sub, key: deviceKey.signing })).status).toBe(200);
  });

  test('when a bound token asks for an unbound sub-token, then 403 token_exceeds_issuer', async () => {
    const { token, key, tenantId } = await boundToken();
    const res = await signedCall({
      method: 'POST',
      path: `/v1/tenants/${tenantId}/tokens`,
      token,
      key: key.signing,
      body: { subject_pubkey: newKey().pubkey, scope: 'vm:read', expires_in_seconds: 300, key_binding: 'none' },
    });
    expect({ status: res.status, code: res.body.code }).toEqual({ status: 403, code: 'token_exceeds_issuer' });
  });

  test('when an unbound token is used as the how-to shows, with a bearer header only, then it works as before, and a signature does not hurt', async () => {
    const { token } = await createTenant(stack);
    expect((await answer(await fetch(`${stack.apiUrl}/v1/vms`, { headers: { authorization: `Bearer ${token}` } }))).status).toBe(200);
    expect((await signedCall({ method: 'GET', path: '/v1/vms', token, key: newKey().signing })).status).toBe(200);
  });

  test('when key_binding is neither none nor required, then 400 naming it', async () => {
    const { tenantId, token } = await createTenant(stack);
    const res = await stack.request('POST', `/v1/tenants/${tenantId}/tokens`, {
      token,
      body: { subject_pubkey: newKey().pubkey, scope: 'vm:read', key_binding: 'yes' },
    });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain('key_binding');
  });
});
