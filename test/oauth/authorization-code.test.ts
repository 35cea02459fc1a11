import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashApiKey } from '../../src/security/api-keys.js';
import { recorder, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { APPS, USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { signInOverHttp } from '../harness/sign-in.js';

type App = TestApp['app'];

/** The authorization code flow with PKCE end to end: create, sign in over HTTP, callback, refresh. */
describe('OAuth2 authorization code flow through the HTTP API', () => {
  let world: EwsWorld;
  const logSets: string[][] = [];
  const bodies: string[] = [];

  before(async () => {
    world = await startEwsWorld();
  });
  after(async () => {
    await world?.close();
  });

  const { app, call } = recorder(() => world.env, { logSets, bodies });

  const session = (name: string, user: { name: string }) => ({ name, type: 'ews', url: world.ews.url, username: user.name, auth: { type: 'oauth2' } });

  /** The path and query of the URL the identity provider redirected the browser to. */
  const local = (redirect: string) => {
    const u = new URL(redirect);
    assert.equal(`${u.origin}${u.pathname}`, 'http://localhost:3000/v1/oauth2/callback', 'the redirect URI is MSB_PUBLIC_URL + /v1/oauth2/callback');
    return `${u.pathname}${u.search}`;
  };

  test('202 with an authorization URL, /authorize redirects to it, the sign-in connects the session', async (t) => {
    const a = await app(t);
    const created = await call(a, 'POST', '/v1/sessions', session('inbox-bob', USERS.bob));
    assert.equal(created.statusCode, 202, created.body);
    const s = created.json();
    assert.equal(s.state, 'awaiting_authorization');
    assert.equal(s.lastError.code, 'AUTHORIZATION_REQUIRED');
    assert.equal(s.mailbox, null);
    const url = new URL(s.authorizationUrl);
    assert.equal(url.origin, world.idp.origin);
    assert.equal(url.pathname, `/${world.idp.tenantId}/oauth2/v2.0/authorize`);
    assert.equal(url.searchParams.get('client_id'), APPS.public.id);
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
    assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(url.searchParams.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(url.searchParams.get('login_hint'), USERS.bob.name);
    assert.match(url.searchParams.get('scope') ?? '', /EWS\.AccessAsUser\.All/);
    assert.match(url.searchParams.get('scope') ?? '', /offline_access/);

    const redirect = await call(a, 'GET', '/v1/sessions/inbox-bob/authorize');
    assert.equal(redirect.statusCode, 302);
    assert.equal(redirect.headers.location, s.authorizationUrl);

    const callbackUrl = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.bob.name, password: USERS.bob.password });
    const page = await call(a, 'GET', local(callbackUrl), undefined, { accept: 'text/html' });
    assert.equal(page.statusCode, 200, page.body);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /Connected/);
    assert.match(page.body, /Session &quot;inbox-bob&quot; is connected/);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');

    const connected = (await call(a, 'GET', '/v1/sessions/inbox-bob')).json();
    assert.equal(connected.state, 'connected');
    assert.equal(connected.authorizationUrl, undefined);
    assert.deepEqual([connected.mailbox.messages, connected.mailbox.unseen], [11, 1]);
    const redeemed = world.idp.tokenRequests.filter((r) => r.grantType === 'authorization_code');
    assert.equal(redeemed.length, 1);
    assert.equal(redeemed[0]!.clientSecret, undefined, 'a public client sends no secret');
    assert.equal(world.ews.requests.at(-1)!.principal, USERS.bob.name);

    assertProblem(await call(a, 'GET', '/v1/sessions/inbox-bob/authorize'), 'SESSION_NOT_AWAITING_AUTHORIZATION');
    assertProblem(await call(a, 'GET', '/v1/sessions/nobody/authorize'), 'SESSION_NOT_FOUND');

    // authorize only the first time: another session of the same account and app connects silently
    const authorizeCount = world.idp.authorizeRequests.length;
    const second = await call(a, 'POST', '/v1/sessions', session('inbox-bob-2', USERS.bob));
    assert.equal(second.statusCode, 201, second.body);
    assert.equal(second.json().state, 'connected');
    assert.equal(world.idp.authorizeRequests.length, authorizeCount, 'no second sign-in page');

    // the used state cannot be replayed, and the session it belonged to stays connected
    const replay = await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' });
    assert.match(String(assertProblem(replay, 'OAUTH_STATE_INVALID').detail), /already used/);
    assert.equal((await call(a, 'GET', '/v1/sessions/inbox-bob')).json().state, 'connected');
  });

  test("cached tokens stay with the principal that signed in: another bot naming the same account must sign in", async (t) => {
    const keys = { a: 'oauth-isolation-key-a-000000000', b: 'oauth-isolation-key-b-000000000' };
    const a = await app(t, {
      MSB_AUTH: 'keys',
      MSB_API_KEYS: `bot-a:bot:${hashApiKey(keys.a)},bot-b:bot:${hashApiKey(keys.b)}`,
    });
    const as = (key: string) => ({ authorization: `Bearer ${key}` });
    const created = await call(a, 'POST', '/v1/sessions', session('carol-a', USERS.carol), as(keys.a));
    assert.equal(created.statusCode, 202, created.body);
    const callbackUrl = await signInOverHttp(created.json().authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password });
    assert.equal((await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' })).statusCode, 200);
    assert.equal((await call(a, 'GET', '/v1/sessions/carol-a', undefined, as(keys.a))).json().state, 'connected');
    // the same principal reuses its tokens silently...
    assert.equal((await call(a, 'POST', '/v1/sessions', session('carol-a2', USERS.carol), as(keys.a))).statusCode, 201);
    // ...another principal naming the same account, app and endpoint gets a sign-in of its own
    const other = await call(a, 'POST', '/v1/sessions', session('carol-b', USERS.carol), as(keys.b));
    assert.equal(other.statusCode, 202, other.body);
    assert.equal(other.json().state, 'awaiting_authorization');
  });

  test('the callback answers JSON when asked', async (t) => {
    const a = await app(t);
    const s = (await call(a, 'POST', '/v1/sessions', session('json-carol', USERS.carol))).json();
    const callbackUrl = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password });
    const res = await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), {
      session: 'json-carol',
      state: 'connected',
      message: `Session "json-carol" is connected to the mailbox of ${USERS.carol.name}.`,
      account: USERS.carol.name,
    });
  });

  test('forged and missing state: 400 OAUTH_STATE_INVALID, as a page or as problem+json', async (t) => {
    const a = await app(t);
    const forged = await call(a, 'GET', '/v1/oauth2/callback?code=abc&state=forged-state-value', undefined, { accept: 'application/json' });
    assert.match(String(assertProblem(forged, 'OAUTH_STATE_INVALID').detail), /unknown state/);
    const page = await call(a, 'GET', '/v1/oauth2/callback?code=abc&state=%3Cb%3Ex%3C%2Fb%3E');
    assert.equal(page.statusCode, 400);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.body, /OAUTH_STATE_INVALID/);
    assert.doesNotMatch(page.body, /<b>x<\/b>/);
    assertProblem(await call(a, 'GET', '/v1/oauth2/callback?code=abc', undefined, { accept: 'application/json' }), 'OAUTH_STATE_INVALID');
    // the callback needs no API key, but the log never shows its query (code and state are credentials)
    assert.ok(logSets.at(-1)!.every((line) => !line.includes('forged-state-value')));
  });

  test('an expired state is refused; /authorize then starts a fresh sign-in that works', async (t) => {
    const a = await app(t, { MSB_OAUTH_STATE_TTL_MS: '1000' });
    const s = (await call(a, 'POST', '/v1/sessions', session('slow-alice', USERS.alice))).json();
    const callbackUrl = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.alice.name, password: USERS.alice.password });
    await sleep(1200);
    const expired = await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' });
    assert.match(String(assertProblem(expired, 'OAUTH_STATE_INVALID').detail), /expired.*\/v1\/sessions\/slow-alice\/authorize/);
    assert.equal((await call(a, 'GET', '/v1/sessions/slow-alice')).json().state, 'awaiting_authorization');

    const fresh = await call(a, 'GET', '/v1/sessions/slow-alice/authorize');
    assert.equal(fresh.statusCode, 302);
    const freshUrl = String(fresh.headers.location);
    assert.notEqual(new URL(freshUrl).searchParams.get('state'), new URL(s.authorizationUrl).searchParams.get('state'));
    const again = await call(a, 'GET', '/v1/sessions/slow-alice/authorize');
    assert.equal(again.headers.location, freshUrl, 'a live sign-in is reused, not replaced');
    const ok = await signInOverHttp(freshUrl, { caPem: world.certs.caPem, username: USERS.alice.name, password: USERS.alice.password });
    assert.equal((await call(a, 'GET', local(ok))).statusCode, 200);
    assert.equal((await call(a, 'GET', '/v1/sessions/slow-alice')).json().state, 'connected');
  });

  test('a provider error (access_denied) fails the session with that reason; echoed text is escaped', async (t) => {
    const a = await app(t);
    const s = (await call(a, 'POST', '/v1/sessions', session('denied-carol', USERS.carol))).json();
    const callbackUrl = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password, decision: 'deny' });
    assert.equal(new URL(callbackUrl).searchParams.get('error'), 'access_denied');
    const page = await call(a, 'GET', local(callbackUrl));
    assert.equal(page.statusCode, 403, page.body);
    assert.match(page.body, /OAUTH_ACCESS_DENIED/);
    assert.match(page.body, /AADSTS65004/);
    const failed = (await call(a, 'GET', '/v1/sessions/denied-carol')).json();
    assert.equal(failed.state, 'failed');
    assert.equal(failed.lastError.code, 'OAUTH_ACCESS_DENIED');
    assert.match(failed.lastError.message, /declined to consent/);

    // a hostile error_description with a valid state: shown as text, never as markup
    const other = (await call(a, 'POST', '/v1/sessions', session('denied-2', USERS.carol))).json();
    const state = new URL(other.authorizationUrl).searchParams.get('state')!;
    const hostile = `/v1/oauth2/callback?state=${state}&error=access_denied&error_description=${encodeURIComponent('<script>alert(1)</script>')}`;
    const escaped = await call(a, 'GET', hostile);
    assert.equal(escaped.statusCode, 403);
    assert.doesNotMatch(escaped.body, /<script>/);
    assert.match(escaped.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  test('signing in with another account fails the session with OAUTH_ACCOUNT_MISMATCH', async (t) => {
    const a = await app(t);
    const s = (await call(a, 'POST', '/v1/sessions', session('for-carol', USERS.carol))).json();
    const callbackUrl = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.alice.name, password: USERS.alice.password });
    const res = await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' });
    assert.match(String(assertProblem(res, 'OAUTH_ACCOUNT_MISMATCH').detail), /alice@contoso\.test.*carol@contoso\.test/);
    assert.equal((await call(a, 'GET', '/v1/sessions/for-carol')).json().state, 'failed');
  });

  test('tokens are refreshed before they expire; a refused refresh asks for a new sign-in with a fresh URL', async (t) => {
    const a = await app(t);
    // under MSAL's 5-minute renewal window: every use refreshes, while the old token is still valid
    world.idp.accessTokenLifetime = 240;
    t.after(() => {
      world.idp.accessTokenLifetime = 3600;
      world.idp.refuseRefresh = false;
    });
    const s = (await call(a, 'POST', '/v1/sessions', session('long-alice', USERS.alice))).json();
    const firstUrl = s.authorizationUrl;
    const cb = await signInOverHttp(firstUrl, { caPem: world.certs.caPem, username: USERS.alice.name, password: USERS.alice.password });
    assert.equal((await call(a, 'GET', local(cb))).statusCode, 200);
    const connected = (await call(a, 'GET', '/v1/sessions/long-alice')).json();
    assert.equal(connected.state, 'connected');
    const firstToken = world.ews.requests.at(-1)!.token!;

    const refreshes = () => world.idp.tokenRequests.filter((r) => r.grantType === 'refresh_token' && r.status === 200).length;
    const before = refreshes();
    // refresh=true skips the live read when the cached summary is 0 ms old: let a millisecond pass
    await sleep(5);
    const live = (await call(a, 'GET', '/v1/sessions/long-alice?refresh=true')).json();
    assert.equal(live.state, 'connected');
    assert.equal(live.connectedAt, connected.connectedAt, 'the session was not dropped');
    assert.equal(refreshes(), before + 1, 'MSAL refreshed through the refresh token');
    const secondToken = world.ews.requests.at(-1)!.token!;
    assert.notEqual(secondToken, firstToken, 'EWS got the new token');
    assert.ok(world.idp.principal(firstToken), 'the old token had not expired yet: refreshed before expiry');

    world.idp.refuseRefresh = true;
    await sleep(5);
    const refused = (await call(a, 'GET', '/v1/sessions/long-alice?refresh=true')).json();
    assert.equal(refused.state, 'awaiting_authorization');
    assert.equal(refused.lastError.code, 'AUTHORIZATION_REQUIRED');
    assert.match(refused.lastError.message, /can no longer be refreshed/);
    assert.ok(refused.authorizationUrl && refused.authorizationUrl !== firstUrl, 'a fresh authorization URL');

    world.idp.refuseRefresh = false;
    const cb2 = await signInOverHttp(refused.authorizationUrl, { caPem: world.certs.caPem, username: USERS.alice.name, password: USERS.alice.password });
    assert.equal((await call(a, 'GET', local(cb2))).statusCode, 200);
    assert.equal((await call(a, 'GET', '/v1/sessions/long-alice')).json().state, 'connected');
  });

  test('a redirect with neither code nor error fails the session with OAUTH_PROVIDER_ERROR; no code is redeemed', async (t) => {
    const a = await app(t);
    const s = (await call(a, 'POST', '/v1/sessions', session('bare-carol', USERS.carol))).json();
    const state = new URL(s.authorizationUrl).searchParams.get('state')!;
    const redeemed = world.idp.tokenRequests.filter((r) => r.grantType === 'authorization_code').length;
    const res = await call(a, 'GET', `/v1/oauth2/callback?state=${state}`, undefined, { accept: 'application/json' });
    assert.match(String(assertProblem(res, 'OAUTH_PROVIDER_ERROR').detail), /redirected without a code or an error/);
    const failed = (await call(a, 'GET', '/v1/sessions/bare-carol')).json();
    assert.equal(failed.state, 'failed');
    assert.equal(failed.lastError.code, 'OAUTH_PROVIDER_ERROR');
    assert.equal(world.idp.tokenRequests.filter((r) => r.grantType === 'authorization_code').length, redeemed);
  });

  test('a refresh refused without an AADSTS number (another token service) asks for a new sign-in; the log gives the reason as sent', async (t) => {
    const a = await app(t);
    const logs = logSets.at(-1)!;
    world.idp.accessTokenLifetime = 240;
    t.after(() => {
      world.idp.accessTokenLifetime = 3600;
      world.idp.hostile = undefined;
    });
    const s = (await call(a, 'POST', '/v1/sessions', session('sts-bob', USERS.bob))).json();
    const cb = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.bob.name, password: USERS.bob.password });
    assert.equal((await call(a, 'GET', local(cb))).statusCode, 200);
    // RFC 6749's answer to a revoked grant, without Azure AD's error_codes
    world.idp.hostile = { where: 'token', status: 400, body: '{"error":"invalid_grant","error_description":"The grant was revoked."}', headers: { 'content-type': 'application/json' } };
    await sleep(5);
    const refused = (await call(a, 'GET', '/v1/sessions/sts-bob?refresh=true')).json();
    assert.equal(refused.state, 'awaiting_authorization');
    assert.equal(refused.lastError.code, 'AUTHORIZATION_REQUIRED');
    assert.match(refused.lastError.message, /can no longer be refreshed/);
    const said = logs.map((l) => JSON.parse(l) as { msg?: string; reason?: string }).filter((l) => l.msg?.startsWith('the stored sign-in cannot be refreshed'));
    assert.deepEqual(said.map((l) => l.reason), ['invalid_grant']);
  });

  test('closing a session withdraws its pending sign-in', async (t) => {
    const a = await app(t);
    const s = (await call(a, 'POST', '/v1/sessions', session('gone-carol', USERS.carol))).json();
    const callbackUrl = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password });
    assert.equal((await call(a, 'DELETE', '/v1/sessions/gone-carol')).statusCode, 204);
    assertProblem(await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' }), 'OAUTH_STATE_INVALID');
    // a new session of the same name cannot be completed by the old sign-in either
    const fresh = await call(a, 'POST', '/v1/sessions', session('gone-carol', USERS.carol));
    assert.equal(fresh.statusCode, 202);
    assertProblem(await call(a, 'GET', local(callbackUrl), undefined, { accept: 'application/json' }), 'OAUTH_STATE_INVALID');
    assert.equal((await call(a, 'GET', '/v1/sessions/gone-carol')).json().state, 'awaiting_authorization');
  });

  test('no password, client secret, token or code in any log line or response body', () => {
    assert.ok(world.idp.issued.some((v) => v.startsWith('code.')), 'codes were issued and are checked too');
    assertNoSecrets(logSets.flat(), world.secrets(), 'log');
    assertNoSecrets(bodies, world.secrets(), 'response body');
  });
});
