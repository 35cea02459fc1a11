import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { build } from '../helper.js';

const CHROMIUM = '/usr/bin/chromium';
/**
 * The page is opened as another machine would open it: under a host name that is not loopback (Chromium
 * maps it to 127.0.0.1). Browsers treat localhost as a secure origin and skip some rules there, such as
 * upgrade-insecure-requests, which once left Swagger UI blank for everyone but localhost.
 */
const HOST_NAME = 'broker.swagger-ui.test';
const CHROMIUM_ARGS = [
  `--host-resolver-rules=MAP ${HOST_NAME} 127.0.0.1`,
  // no https-first attempt for the navigation itself: what is tested is the page's own policy
  '--disable-features=HttpsUpgrades',
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** The operation block of one route in Swagger UI, e.g. opblock(page, 'get', '/v1/sessions/{name}'). */
function opblock(page: Page, method: string, path: string): Locator {
  return page
    .locator(`.opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) });
}

/** Expands an operation and turns "Try it out" on with its button; returns the block. */
async function tryItOut(page: Page, method: string, path: string): Promise<Locator> {
  const block = opblock(page, method, path);
  await block.locator('.opblock-summary').first().click();
  const toggle = block.locator('button.try-out__btn');
  const execute = block.getByRole('button', { name: 'Execute' });
  // uiConfig.tryItOutEnabled: the form opens editable, the button reading "Cancel"; a person can still
  // switch it off and on again, so the test clicks the real "Try it out" button from the off state
  await expectText(toggle, 'Cancel');
  await toggle.click();
  await expectText(toggle, 'Try it out');
  await execute.waitFor({ state: 'detached' }); // off: the form is read-only, nothing to execute
  await toggle.click();
  await expectText(toggle, 'Cancel');
  await execute.waitFor();
  return block;
}

/** Waits until a locator's text is exactly `text` (Playwright's own polling, no sleeps). */
async function expectText(locator: Locator, text: string): Promise<void> {
  await locator.filter({ hasText: new RegExp(`^\\s*${text}\\s*$`) }).waitFor();
}

/** Clicks Execute and returns what Swagger UI renders for the live response: status cell and body. */
async function execute(block: Locator): Promise<{ status: string; body: string }> {
  await block.getByRole('button', { name: 'Execute' }).click();
  const live = block.locator('.live-responses-table .response');
  const status = live.locator('.response-col_status').first();
  await status.waitFor();
  const body = live.locator('.response-col_description pre.microlight').first();
  await body.waitFor();
  // the status cell is the code, plus an "Undocumented" badge when Swagger UI finds no response for it
  return { status: (await status.innerText()).trim(), body: await body.innerText() };
}

test('Swagger UI at /docs renders the API and "Try it out" works in a real browser', { timeout: 180_000 }, async (t) => {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: run .ci/install-test-deps (as root or with sudo) to install Debian's chromium`,
  );

  const { app } = await build(t);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const origin = `http://${HOST_NAME}:${port}`;

  const profile = mkdtempSync(join(tmpdir(), 'msb-swagger-ui-'));
  let context: BrowserContext | undefined;
  t.after(async () => {
    await context?.close();
    rmSync(profile, { recursive: true, force: true });
  });
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
    timeout: 20_000,
  });
  context.setDefaultTimeout(30_000); // hang guards, not timings: a loaded machine renders the 240 KB document slowly
  const page = context.pages()[0] ?? (await context.newPage());

  const consoleErrors: string[] = [];
  const failedRequests: string[] = [];
  const requested: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (at ${msg.location().url || 'unknown'})`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  page.on('request', (req) => requested.push(req.url()));
  page.on('requestfailed', (req) => failedRequests.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`));

  // 1. the page renders the document: title and every session route
  const docs = await page.goto(`${origin}/docs`);
  assert.equal(docs?.status(), 200);
  await page.locator('.swagger-ui .info .title').waitFor();
  assert.match(await page.locator('.swagger-ui .info .title').innerText(), /^mail-session-broker\b/);
  for (const [method, path] of [
    ['post', '/v1/sessions'],
    ['get', '/v1/sessions'],
    ['get', '/v1/sessions/{name}'],
    ['delete', '/v1/sessions/{name}'],
  ] as const) {
    const block = opblock(page, method, path);
    await block.waitFor();
    assert.equal(await block.count(), 1, `${method.toUpperCase()} ${path} shown once`);
    assert.equal((await block.locator('.opblock-summary-method').innerText()).trim(), method.toUpperCase());
  }
  // a document Swagger UI cannot read shows an error box instead of (or above) the operations
  assert.equal(await page.locator('.swagger-ui .errors-wrapper').count(), 0, 'Swagger UI reports errors in the document');

  // 2. "Try it out" on the list: a real request from the browser, 200 with the sessions array
  const list = await tryItOut(page, 'get', '/v1/sessions');
  const listed = await execute(list);
  assert.equal(listed.status, '200');
  assert.match(listed.body, /"sessions"/);
  assert.deepEqual(JSON.parse(listed.body), { sessions: [] });

  // 3. "Try it out" on an unknown name: the problem+json answer is visible to a person
  const inspect = await tryItOut(page, 'get', '/v1/sessions/{name}');
  await inspect.locator('tr[data-param-name="name"] input').fill('nobody');
  const missing = await execute(inspect);
  // Swagger UI 5 matches a live status only against exact codes and "default", not the "4XX" range
  // the document uses, so it adds an "Undocumented" badge; the code itself is what matters here
  assert.match(missing.status, /^404\b/);
  assert.match(missing.body, /SESSION_NOT_FOUND/);
  assert.match(missing.body, /"instance": "\/v1\/sessions\/nobody"/);
  // the curl line Swagger UI shows is the request the browser made
  assert.match(await inspect.locator('.curl-command').innerText(), /\/v1\/sessions\/nobody/);

  // kept for a person to look at (a directory of its own: a fixed /tmp path would race other runs and users)
  const screenshot = join(mkdtempSync(join(tmpdir(), 'msb-swagger-ui-shot-')), 'swagger-ui.png');
  await page.screenshot({ path: screenshot, fullPage: true });
  t.diagnostic(`screenshot: ${screenshot}`);

  // 4. nothing broke on the way, and nothing was loaded from outside the service
  const local = (text: string) => text.includes(origin);
  // Chromium logs every non-2xx fetch as "Failed to load resource"; the 404 asked for above is the one expected
  const expected404 = `Failed to load resource: the server responded with a status of 404 (Not Found) (at ${origin}/v1/sessions/nobody)`;
  const unexpected = consoleErrors.filter((e) => e !== expected404);
  assert.deepEqual(unexpected.filter(local), [], 'console errors from the service');
  assert.deepEqual(unexpected, [], 'console errors');
  assert.deepEqual(failedRequests.filter(local), [], 'failed requests to the service');
  assert.deepEqual(failedRequests, [], 'failed requests');
  assert.deepEqual(
    requested.filter((url) => !url.startsWith(`${origin}/`) && !url.startsWith('data:')),
    [],
    'the page loads only local assets',
  );
});
