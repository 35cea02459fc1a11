import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type BrowserContext } from 'playwright-core';
import { build } from '../helper.js';
import { USERS, assertNoSecrets, startEwsWorld } from '../harness/ews-world.js';
import { freePort } from '../harness/ports.js';

const CHROMIUM = '/usr/bin/chromium';

/** The one browser API used inside page.evaluate (the tests compile without the DOM library). */
interface BrowserWindow {
  getComputedStyle(element: unknown): { color: string };
}

/** The SPKI pin Chromium accepts for one certificate: the browser trusts the fake IdP's leaf and nothing else extra. */
function spkiPin(certPem: string): string {
  const spki = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}

test('a person signs in with a real browser: login form, consent, redirect endpoint, session connected', { timeout: 90_000 }, async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run .ci/install-test-deps (as root or with sudo) to install Debian's chromium`);
  const world = await startEwsWorld();
  t.after(() => world.close());

  const profile = mkdtempSync(join(tmpdir(), 'msb-oauth-browser-'));
  let context: BrowserContext | undefined;
  // launched before the app is built, so that it closes first (after hooks run in order): while it
  // holds a keep-alive connection, closing the app would wait for that connection
  const closeBrowser = async () => {
    await context?.close();
    context = undefined;
    rmSync(profile, { recursive: true, force: true });
  };
  t.after(closeBrowser);
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic',
      // the browser (not the service) accepts the fake identity provider's test certificate, by its key only
      `--ignore-certificate-errors-spki-list=${spkiPin(world.certs.certPem)}`,
    ],
    timeout: 20_000,
  });

  // the service listens on plain http on loopback, and MSB_PUBLIC_URL names exactly that origin
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const { app, logs } = await build(t, { ...world.env, MSB_PUBLIC_URL: origin });
  await app.listen({ host: '127.0.0.1', port });

  const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'browser-bob', type: 'ews', url: world.ews.url, username: USERS.bob.name, auth: { type: 'oauth2' } } });
  assert.equal(created.statusCode, 202, created.body);
  const { authorizationUrl } = created.json();
  assert.equal(new URL(authorizationUrl).searchParams.get('redirect_uri'), `${origin}/v1/oauth2/callback`);

  context.setDefaultTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  const requested: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (at ${msg.location().url || 'unknown'})`);
  });
  page.on('request', (req) => requested.push(req.url()));

  // 1. the authorization URL (also reachable through /v1/sessions/{name}/authorize) shows the login form
  await page.goto(`${origin}/v1/sessions/browser-bob/authorize`);
  assert.equal(await page.title(), 'Sign in');
  assert.equal(await page.locator('input[name="username"]').inputValue(), USERS.bob.name, 'login_hint pre-fills the account');
  await page.locator('input[name="password"]').fill(USERS.bob.password);
  await page.getByRole('button', { name: 'Sign in' }).click();

  // 2. consent
  await page.getByRole('button', { name: 'Accept' }).waitFor();
  assert.match(await page.locator('body').innerText(), /EWS\.AccessAsUser\.All/);
  const landed = page.waitForResponse((res) => res.url().startsWith(`${origin}/v1/oauth2/callback`));
  await page.getByRole('button', { name: 'Accept' }).click();

  // 3. the redirect endpoint: a page that says the session is connected
  const response = await landed;
  assert.equal(response.status(), 200);
  const headers = response.headers();
  assert.match(headers['content-security-policy'] ?? '', /default-src 'none'/);
  assert.equal(headers['cache-control'], 'no-store');
  await page.locator('h1').waitFor();
  assert.equal(await page.locator('h1').innerText(), 'Connected');
  assert.match(await page.locator('body').innerText(), /Session "browser-bob" is connected to the mailbox of bob@contoso\.test\./);
  // the inline style applies (CSP allows it) and nothing else is loaded
  assert.equal(await page.locator('h1').evaluate((el) => (globalThis as unknown as BrowserWindow).getComputedStyle(el).color), 'rgb(10, 107, 45)');

  const inspected = (await app.inject({ method: 'GET', url: '/v1/sessions/browser-bob' })).json();
  assert.equal(inspected.state, 'connected');
  assert.deepEqual([inspected.mailbox.messages, inspected.mailbox.unseen], [11, 1]);
  assert.equal(world.ews.requests.at(-1)!.principal, USERS.bob.name);

  const service = requested.filter((u) => u.startsWith(origin));
  assert.deepEqual(
    service.filter((u) => !u.startsWith(`${origin}/v1/oauth2/callback?`) && !u.endsWith('/favicon.ico')),
    [`${origin}/v1/sessions/browser-bob/authorize`],
    'the browser asked the service for nothing else',
  );
  assert.deepEqual(consoleErrors.filter((e) => !e.includes('favicon.ico')), [], 'console errors');
  await closeBrowser();
  assertNoSecrets(logs, world.secrets(), 'log');
});
