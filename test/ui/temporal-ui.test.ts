/**
 * What an operator does in the Temporal UI: filter the workflow list by the TenantId
 * search attribute, find that tenant's workflow (and no other tenant's), open it and read
 * its summary and current VM usage.
 *
 * Runs its own Temporal dev server WITH the web UI (the run's shared one is headless),
 * the whole service against it (startTestStack), and Debian's Chromium through
 * playwright-core. Chromium comes from scripts/ensure-chromium.sh (called by `npm test`,
 * which exports CHROMIUM_PATH); without one the suite fails (test/helpers/chromium.ts).
 * Screenshots go to .data/ui-screenshots/ for a person to look at.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startStack, type DevStack } from '../../src/devstack/stack';
import { REPO_ROOT } from '../../src/devstack/temporal-binary';
import { chromiumPath } from '../helpers/chromium';
import { createTenant, eventually, SMALL_VM, startTestStack, type TestStack } from '../helpers/test-stack';

const SCREENSHOT_DIR = path.join(REPO_ROOT, '.data', 'ui-screenshots');

/**
 * Headless, and without Chromium's own background traffic (update checks, sync, field
 * trials), which this machine's closed network refuses and which only slows start-up.
 */
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

describe('Temporal UI as an operator uses it', () => {
  let withUi: DevStack | undefined;
  let stack: TestStack | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    // Quiet unless it fails to start (the error then carries its last lines).
    withUi = await startStack({ env: {}, temporal: { onLine: () => undefined }, services: [] });
    stack = await startTestStack({ configOverrides: { TEMPORAL_ADDRESS: withUi.env.TEMPORAL_ADDRESS! } });
    browser = await chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.close();
    await withUi?.stop();
  }, 60_000);

  /** The visible text of the page and of every frame in it (the UI renders Markdown in iframes). */
  async function textOfAllFrames(page: Page): Promise<string> {
    const texts = await Promise.all(
      page.frames().map((frame) =>
        frame
          .locator('body')
          .innerText({ timeout: 2_000 })
          .catch(() => ''),
      ),
    );
    return texts.join('\n');
  }

  async function screenshot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
  }

  test("when an operator filters the workflow list by TenantId, then only that tenant's workflow is listed, and its page shows the summary and current VM usage", async () => {
    const s = stack!;
    const watched = await createTenant(s);
    const other = await createTenant(s);

    // Two running VMs for the watched tenant; the other tenant's workflow exists but holds none.
    const vmIds: string[] = [];
    for (let i = 0; i < 2; i += 1) {
      const spawned = await s.request('POST', '/v1/vms', { token: watched.token, body: SMALL_VM });
      expect(spawned.status).toBe(202);
      vmIds.push(spawned.body.vm_id);
    }
    for (const vmId of vmIds) {
      await eventually(
        async () => (await s.request('GET', `/v1/vms/${vmId}`, { token: watched.token })).body.status === 'running',
        20_000,
        `VM ${vmId} running`,
      );
    }
    // Registering the other tenant started its workflow on the same namespace, so the filter
    // has something to leave out.
    expect((await s.temporal.workflow.getHandle(`tenant-${other.tenantId}`).describe()).status.name).toBe('RUNNING');

    const page = await browser!.newPage({ viewport: { width: 1440, height: 1000 } });
    try {
      // The list, filtered as an operator would type it in the search box.
      const query = `TenantId="${watched.tenantId}"`;
      const listUrl = `${withUi!.temporal!.uiUrl}/namespaces/${withUi!.temporal!.namespace}/workflows?query=${encodeURIComponent(query)}`;
      const watchedId = `tenant-${watched.tenantId}`;
      const otherId = `tenant-${other.tenantId}`;
      await page.goto(listUrl);
      const watchedLink = page.getByRole('link', { name: watchedId, exact: true });
      await watchedLink.first().waitFor({ timeout: 30_000 });
      await screenshot(page, 'workflow-list-by-tenant');

      const listText = await page.locator('body').innerText();
      const listedTenantWorkflows = [...new Set(listText.match(/\btenant-t-[a-z0-9-]+/g) ?? [])];
      expect(listedTenantWorkflows).toEqual([watchedId]);
      expect(listText).not.toContain(otherId);

      // The workflow's own page.
      await watchedLink.first().click();
      await page.waitForURL(new RegExp(`/workflows/${watchedId}/`), { timeout: 30_000 });
      await screenshot(page, 'tenant-workflow-timeline');
      // This UI (2.54) keeps the summary, details and current details under "User Metadata",
      // each rendered from Markdown inside its own sandboxed iframe.
      await page.getByText('User Metadata', { exact: true }).first().click();
      for (const heading of ['Summary', 'Details', 'Current Details']) {
        await page.getByText(heading, { exact: true }).first().waitFor({ timeout: 30_000 });
      }
      const summary = `Tenant ${watched.tenantId}: VM spawn/destroy serialisation and quota`;
      const shown = await eventually(
        async () => {
          const text = await textOfAllFrames(page);
          return text.includes(summary) && /VMs: 2 \/ 10/.test(text) ? text : undefined;
        },
        30_000,
        'summary and current details in the UI',
      );
      await screenshot(page, 'tenant-workflow-user-metadata');

      expect(shown).toContain(summary);
      expect(shown).toContain(`Owner tenant: ${watched.tenantId}.`);
      expect(shown).toMatch(/VMs: 2 \/ 10 \(provisioning 0, destroying 0\)/);
      expect(shown).toContain('Storage: 10 / 100 GB');
      expect(shown).not.toContain(other.tenantId);
    } catch (error) {
      await screenshot(page, 'failure').catch(() => undefined);
      console.log(`UI page at failure: ${page.url()}\n${await textOfAllFrames(page).catch(() => '')}`);
      throw error;
    } finally {
      await page.close();
    }
  }, 120_000);
});
