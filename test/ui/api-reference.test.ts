/**
 * Issue 11, part 4: GET /docs renders the served OpenAPI document as an API reference page, with
 * every asset from the API itself. Opened in Debian's Chromium (playwright-core, as the Temporal UI
 * test does; the suite fails without a Chromium): every operation of /openapi.json is listed, and the page
 * made no request to any other origin and broke no rule of its Content-Security-Policy. Issue 22: the
 * operations are grouped under the document's tags (tenants, tokens, VMs, audit, service), each with its description.
 */
import { chromium, type Browser } from 'playwright-core';
import { serveApi, type ServedApi } from '../helpers/api-server';
import { chromiumPath } from '../helpers/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

jest.setTimeout(90_000);

describe('API reference page at /docs', () => {
  // The API as buildApi wires it; only /docs, its assets and /openapi.json are exercised.
  let served: ServedApi;
  let origin: string;
  let browser: Browser;

  beforeAll(async () => {
    served = await serveApi();
    origin = served.url;
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
  });
  afterAll(async () => {
    await browser?.close();
    await served?.close();
  });

  test('when /docs is opened in a browser, then every operation of the served document is listed and every asset came from the API', async () => {
    const doc = (await (await fetch(`${origin}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
    const expected = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(expected.length).toBeGreaterThan(10);

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requested: string[] = [];
    const problems: string[] = [];
    page.on('request', (request) => void requested.push(request.url()));
    page.on('requestfailed', (request) => void problems.push(`request failed: ${request.url()} ${request.failure()?.errorText ?? ''}`));
    page.on('pageerror', (error) => void problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });

    const response = await page.goto(`${origin}/docs`, { waitUntil: 'networkidle' });
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page
      .locator('.opblock')
      .nth(expected.length - 1)
      .waitFor({ timeout: 30_000 });

    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map((block) => {
        const method = block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '';
        const path = block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '';
        return `${method.toUpperCase()} ${path}`;
      }),
    );
    expect(listed.sort()).toEqual(expected);
    expect(await page.title()).toBe('vm-tenant API reference');

    // Grouped by tag, as the document declares them: each group with its description and its operations.
    const tagged = doc as unknown as { tags: { name: string; description: string }[]; paths: Record<string, Record<string, { tags: string[] }>> };
    const expectedGroups = tagged.tags.map(({ name, description }) => ({
      name,
      description,
      operations: Object.entries(tagged.paths)
        .flatMap(([path, ops]) => Object.entries(ops).flatMap(([method, op]) => (op.tags.includes(name) ? [`${method.toUpperCase()} ${path}`] : [])))
        .sort(),
    }));
    const groups = await page.$$eval('.opblock-tag-section', (sections) =>
      sections.map((section) => ({
        name: section.querySelector('.opblock-tag')?.getAttribute('data-tag') ?? '',
        description: section.querySelector('.opblock-tag small')?.textContent?.trim() ?? '',
        operations: [...section.querySelectorAll('.opblock')]
          .map(
            (block) =>
              `${(block.querySelector('.opblock-summary-method')?.textContent?.trim() ?? '').toUpperCase()} ${block.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? ''}`,
          )
          .sort(),
      })),
    );
    expect(groups).toEqual(expectedGroups);
    // No "default" group, no empty one, and a representative of each where a reader looks for it.
    const groupOf = Object.fromEntries(groups.flatMap((group) => group.operations.map((operation) => [operation, group.name])));
    expect(groups.map((group) => group.name)).toEqual(['tenants', 'tokens', 'VMs', 'audit', 'service']);
    for (const group of groups) expect(group.operations.length).toBeGreaterThan(0);
    expect(groupOf).toMatchObject({
      'POST /v1/tenants': 'tenants',
      'POST /v1/tenants/{tenant_id}/tokens': 'tokens',
      'DELETE /v1/tenants/{tenant_id}/tokens/{token_id}': 'tokens',
      'POST /v1/vms': 'VMs',
      'GET /v1/audit': 'audit',
      'GET /.well-known/vm-tenant/ledger-checkpoint-key': 'audit',
      'GET /healthz': 'service',
    });

    expect(requested.length).toBeGreaterThan(0);
    expect(requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:'))).toEqual([]);
    expect(requested).toEqual(expect.arrayContaining([`${origin}/docs/assets/swagger-ui-bundle.js`, `${origin}/openapi.json`]));
    expect(problems).toEqual([]);
    await page.close();
  });

  test('when an asset that is not part of the page is asked for, then it is not served', async () => {
    for (const name of ['package.json', 'index.html', '..%2Fpackage.json', 'swagger-ui-bundle.js.map']) {
      expect((await fetch(`${origin}/docs/assets/${name}`)).status).toBe(404);
    }
    expect((await fetch(`${origin}/docs/assets/swagger-ui.css`)).headers.get('content-type')).toMatch(/^text\/css/);
  });
});
