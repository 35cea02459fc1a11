import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from '../helper.js';
import { USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { signInOverHttp } from '../harness/sign-in.js';

/** "Authorize only the first time": the token cache survives a restart, encrypted at rest. */
describe('the encrypted token cache', () => {
  let world: EwsWorld;
  let dir: string;
  const logSets: string[][] = [];

  before(async () => {
    world = await startEwsWorld();
    dir = mkdtempSync(join(tmpdir(), 'msb-token-cache-'));
  });
  after(async () => {
    await world?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // watch: [] keeps the count of token grants to the connect (with access tokens shorter than MSAL's refresh
  // window, the watcher's requests after it would each refresh too)
  const session = { name: 'persist-bob', type: 'ews', auth: { type: 'oauth2' }, username: USERS.bob.name, watch: [] } as const;
  const callbackPath = (redirect: string) => `${new URL(redirect).pathname}${new URL(redirect).search}`;

  test('a rebuilt app with the same key and file connects silently through the stored refresh token', async (t) => {
    const cache = { MSB_TOKEN_CACHE_FILE: join(dir, 'state', 'tokens.bin'), MSB_TOKEN_CACHE_KEY: randomBytes(32).toString('base64') };
    // access tokens shorter than MSAL's 5-minute window: the second app must refresh, which needs the stored refresh token
    world.idp.accessTokenLifetime = 240;
    t.after(() => void (world.idp.accessTokenLifetime = 3600));

    const first = await build(t, { ...world.env, ...cache });
    logSets.push(first.logs);
    const created = await first.app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...session, url: world.ews.url } });
    assert.equal(created.statusCode, 202, created.body);
    const redirect = await signInOverHttp(created.json().authorizationUrl, { caPem: world.certs.caPem, username: USERS.bob.name, password: USERS.bob.password });
    assert.equal((await first.app.inject({ method: 'GET', url: callbackPath(redirect) })).statusCode, 200);
    assert.equal((await first.app.inject({ method: 'GET', url: '/v1/sessions/persist-bob' })).json().state, 'connected');
    await first.app.close();

    const sealed = await readFile(cache.MSB_TOKEN_CACHE_FILE);
    assert.equal((await stat(cache.MSB_TOKEN_CACHE_FILE)).mode & 0o777, 0o600, 'readable by the owner only');
    assert.ok(sealed.subarray(0, 13).equals(Buffer.from('MSB-TOKENS-1\n')));
    const text = sealed.toString('latin1');
    assertNoSecrets([text], world.secrets(), 'token cache file');
    for (const marker of ['refresh_token', 'RefreshToken', 'AccessToken', USERS.bob.name, 'secret']) {
      assert.ok(!text.includes(marker), `the cache file shows "${marker}" in clear`);
    }

    const authorizePages = world.idp.authorizeRequests.length;
    const grantsBefore = world.idp.tokenRequests.length;
    const second = await build(t, { ...world.env, ...cache });
    logSets.push(second.logs);
    const again = await second.app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...session, url: world.ews.url } });
    assert.equal(again.statusCode, 201, again.body);
    assert.equal(again.json().state, 'connected');
    assert.equal(world.idp.authorizeRequests.length, authorizePages, 'no second sign-in');
    assert.deepEqual(world.idp.tokenRequests.slice(grantsBefore).map((r) => [r.grantType, r.status]), [['refresh_token', 200]]);
    assert.equal(world.ews.requests.at(-1)!.principal, USERS.bob.name);
  });

  test('a wrong key or an altered file stops the start instead of losing the cache', async (t) => {
    const file = join(dir, 'other.bin');
    const key = randomBytes(32).toString('base64');
    const writer = await build(t, { ...world.env, MSB_TOKEN_CACHE_FILE: file, MSB_TOKEN_CACHE_KEY: key });
    const res = await writer.app.inject({
      method: 'POST', url: '/v1/sessions', payload: { name: 'rop', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'oauth2', flow: 'password' } },
    });
    assert.equal(res.statusCode, 201, res.body);
    await writer.app.close();
    assert.ok(existsSync(file));

    await assert.rejects(build(t, { ...world.env, MSB_TOKEN_CACHE_FILE: file, MSB_TOKEN_CACHE_KEY: randomBytes(32).toString('base64') }), /cannot be decrypted with MSB_TOKEN_CACHE_KEY/);
    const bytes = await readFile(file);
    bytes[bytes.length - 1]! ^= 0xff;
    await writeFile(file, bytes);
    await assert.rejects(build(t, { ...world.env, MSB_TOKEN_CACHE_FILE: file, MSB_TOKEN_CACHE_KEY: key }), /cannot be decrypted/);
    await assert.rejects(build(t, { ...world.env, MSB_TOKEN_CACHE_KEY: 'not-base64' }), /MSB_TOKEN_CACHE_KEY/);
  });

  test('without a key, tokens stay in memory and the log says so once', async (t) => {
    const { app, logs } = await build(t, world.env);
    logSets.push(logs);
    for (const name of ['mem-1', 'mem-2']) {
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...session, name, url: world.ews.url, username: USERS.carol.name } });
      assert.equal(res.statusCode, 202, res.body);
    }
    const warnings = logs.filter((l) => l.includes('kept in memory only'));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.equal(JSON.parse(warnings[0]!).level, 40);

    const half = await build(t, { ...world.env, MSB_TOKEN_CACHE_KEY: randomBytes(32).toString('base64') });
    assert.ok(half.logs.some((l) => l.includes('MSB_TOKEN_CACHE_FILE is not set')));
  });

  test('no password, client secret or token in any log line', () => {
    assertNoSecrets(logSets.flat(), world.secrets(), 'log');
  });
});
