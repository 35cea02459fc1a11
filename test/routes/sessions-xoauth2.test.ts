import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { xoauth2Payload } from '../../src/connectors/pop3/sasl.js';
import { build, recorder, type TestApp } from '../helper.js';
import { assertInvalidBody, assertProblem } from '../problem-assert.js';
import type { TestCerts } from '../harness/certs.js';
import { startDovecot, type DovecotServer } from '../harness/dovecot.js';
import type { FakeIdentity } from '../harness/fake-identity.js';
import { APPS, USERS, assertNoSecrets, startMicrosoftIdentity } from '../harness/microsoft-world.js';
import { startFakeTokenEndpoint, startIntrospection, type FakeTokenEndpoint, type IntrospectionEndpoint } from '../harness/fake-oauth-provider.js';
import { signInOverHttp } from '../harness/sign-in.js';
import { startTcpProxy } from '../harness/tcp-tools.js';
import { startRedis } from '../harness/redis.js';
import { Redis } from 'ioredis';

type App = TestApp['app'];

/** The generic provider's client registration (its own secret, sent as client_secret_post or Basic). */
const GENERIC = { id: 'generic-mail-client', secret: 'Generic-Secret-4e1f9c' };

/** Fast lifecycle settings so that drops and reconnects happen within a test. */
const FAST = { MSB_KEEPALIVE_INTERVAL_MS: '300', MSB_COMMAND_TIMEOUT_MS: '2000', MSB_CONNECT_TIMEOUT_MS: '5000', MSB_RECONNECT_BASE_MS: '100', MSB_RECONNECT_MAX_MS: '400' };

/**
 * SASL XOAUTH2 for IMAP and POP3 against a real Dovecot 2.3 (oauth2 passdb, token introspection), with
 * tokens from the fake Microsoft identity provider (msal-node) and from a generic OAuth2 token endpoint.
 */
describe('IMAP and POP3 with OAuth2 (XOAUTH2) against Dovecot', () => {
  let certs: TestCerts;
  let idp: FakeIdentity;
  let generic: FakeTokenEndpoint;
  let introspection: IntrospectionEndpoint;
  let dovecot: DovecotServer;
  let env: Record<string, string>;
  const logSets: string[][] = [];
  const bodies: string[] = [];

  before(async () => {
    const microsoft = await startMicrosoftIdentity();
    ({ certs, idp } = microsoft);
    generic = await startFakeTokenEndpoint({ clients: { [GENERIC.id]: GENERIC.secret }, appUser: USERS.shared.name });
    // app-only Microsoft tokens stand for the shared mailbox, as an Exchange service principal granted to it would
    introspection = await startIntrospection((token) => {
      const p = idp.principal(token);
      return p ? (p.appOnly ? USERS.shared.name : p.user) : generic.principal(token);
    });
    // the Dovecot passwords are not what the bots know: only tokens open these mailboxes here
    const dovecotUsers = Object.fromEntries(Object.values(USERS).map((u) => [u.name, `dovecot-only-${u.password}`]));
    dovecot = await startDovecot({ users: dovecotUsers, oauth2: { introspectionUrl: introspection.url, mechanisms: ['xoauth2'] } });
    for (let i = 0; i < 2; i++) await dovecot.deliver(USERS.alice.name, `From: a@example.test\nTo: ${USERS.alice.name}\nSubject: ${i}\n\nhello\n`);
    await dovecot.deliver(USERS.shared.name, `From: a@example.test\nTo: ${USERS.shared.name}\nSubject: s\n\nhello\n`);
    env = {
      ...microsoft.env,
      MSB_MICROSOFT_CLIENT_ID: APPS.server.id,
      MSB_MICROSOFT_CLIENT_SECRET: APPS.server.secret,
      MSB_MICROSOFT_TRUSTED_HOSTS: '127.0.0.1',
    };
  });
  after(async () => {
    await dovecot?.close();
    await introspection?.close();
    await generic?.close();
    await idp?.close();
  });

  const { app, call, create } = recorder(() => env, { logSets, bodies });
  const mail = (type: 'imap' | 'pop3', name: string, username: string, auth: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    name, type, host: '127.0.0.1', port: type === 'imap' ? dovecot.ports.imaps : dovecot.ports.pop3s, username, auth: { type: 'oauth2', ...auth }, ...extra,
  });
  const genericAuth = (extra: Record<string, unknown> = {}) => ({ provider: 'generic', tokenUrl: generic.url, clientId: GENERIC.id, clientSecret: GENERIC.secret, ...extra });
  async function waitForSession(a: App, name: string, predicate: (s: Record<string, any>) => boolean, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      const res = await a.inject({ method: 'GET', url: `/v1/sessions/${name}` });
      last = res.statusCode === 200 ? res.json() : res.statusCode;
      if (res.statusCode === 200 && predicate(res.json())) return res.json();
      await sleep(50);
    }
    assert.fail(`session ${name} did not reach the expected state in ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
  }

  test('microsoft provider, password flow: IMAP and POP3 log in with XOAUTH2 and the Microsoft 365 scopes', async (t) => {
    const a = await app(t);
    const before = idp.tokenRequests.length;
    const imap = await create(a, mail('imap', 'ms-imap', USERS.alice.name, { flow: 'password' }, { password: USERS.alice.password }));
    assert.equal(imap.statusCode, 201, imap.body);
    const s = imap.json();
    assert.equal(s.state, 'connected');
    assert.equal(s.mailbox.messages, 2);
    assert.deepEqual(s.auth, {
      type: 'oauth2', provider: 'microsoft', flow: 'password', clientId: APPS.server.id, tenantId: idp.tenantId, authorityHost: idp.host,
      clientSecretSource: 'server', scope: 'https://outlook.office.com/IMAP.AccessAsUser.All',
    });
    await dovecot.waitForLog(new RegExp(`imap-login: Info: Login: user=<${USERS.alice.name.replace('.', '\\.')}>, method=XOAUTH2`));

    const pop = await create(a, mail('pop3', 'ms-pop', USERS.alice.name, { flow: 'password' }, { password: USERS.alice.password }));
    assert.equal(pop.statusCode, 201, pop.body);
    assert.equal(pop.json().mailbox.messages, 2);
    assert.ok(pop.json().mailbox.size > 0);
    await dovecot.waitForLog(new RegExp(`pop3-login: Info: Login: user=<${USERS.alice.name.replace('.', '\\.')}>, method=XOAUTH2`));

    const grants = idp.tokenRequests.slice(before);
    assert.deepEqual(grants.map((g) => [g.grantType, g.username, g.clientSecret]), [
      ['password', USERS.alice.name, APPS.server.secret],
      ['password', USERS.alice.name, APPS.server.secret],
    ]);
    assert.match(grants[0]!.scope!, /https:\/\/outlook\.office\.com\/IMAP\.AccessAsUser\.All/);
    assert.match(grants[0]!.scope!, /offline_access/);
    assert.match(grants[1]!.scope!, /https:\/\/outlook\.office\.com\/POP\.AccessAsUser\.All/);
    assert.ok(introspection.requests.every((r) => !r.token.includes(USERS.alice.password)), 'Dovecot saw tokens, never the password');
    assert.ok(introspection.requests.some((r) => r.active && idp.principal(r.token)?.user === USERS.alice.name));
  });

  test('microsoft provider, client credentials (app-only, https://outlook.office365.com/.default) and the authorization code flow', async (t) => {
    const a = await app(t);
    const before = idp.tokenRequests.length;
    const app1 = await create(a, mail('imap', 'ms-app', USERS.shared.name, { flow: 'clientCredentials' }));
    assert.equal(app1.statusCode, 201, app1.body);
    assert.equal(app1.json().mailbox.messages, 1);
    assert.deepEqual(idp.tokenRequests.slice(before).map((g) => [g.grantType, g.scope]), [['client_credentials', 'https://outlook.office365.com/.default']]);

    const code = await create(a, mail('imap', 'ms-code', USERS.bob.name, {}));
    assert.equal(code.statusCode, 202, code.body);
    assert.equal(code.json().auth.flow, 'authorizationCode');
    const url = new URL(code.json().authorizationUrl);
    assert.equal(url.searchParams.get('login_hint'), USERS.bob.name);
    assert.match(url.searchParams.get('scope') ?? '', /IMAP\.AccessAsUser\.All/);
    const callback = await signInOverHttp(code.json().authorizationUrl, { caPem: certs.caPem, username: USERS.bob.name, password: USERS.bob.password });
    const u = new URL(callback);
    assert.equal((await call(a, 'GET', `${u.pathname}${u.search}`)).statusCode, 200);
    const connected = (await call(a, 'GET', '/v1/sessions/ms-code')).json();
    assert.equal(connected.state, 'connected');
    assert.equal(connected.mailbox.messages, 0);
  });

  test('generic provider: refresh token (also as a secret reference) and client credentials with HTTP Basic', async (t) => {
    const a = await app(t, {}, { MSB_SECRET_CAROL_RT: generic.refreshTokenFor(USERS.carol.name) });
    const before = generic.requests.length;
    const rt = generic.refreshTokenFor(USERS.alice.name);
    const imap = await create(a, mail('imap', 'g-imap', USERS.alice.name, genericAuth({ refreshToken: rt, scope: 'mail.imap offline' })));
    assert.equal(imap.statusCode, 201, imap.body);
    assert.equal(imap.json().mailbox.messages, 2);
    assert.deepEqual(imap.json().auth, {
      type: 'oauth2', provider: 'generic', flow: 'refreshToken', clientId: GENERIC.id, tokenUrl: generic.url, clientSecretSource: 'request', scope: 'mail.imap offline',
    });
    const pop = await create(a, mail('pop3', 'g-pop', USERS.carol.name, genericAuth({ refreshToken: { secret: 'carol-rt' } })));
    assert.equal(pop.statusCode, 201, pop.body);
    const app2 = await create(a, mail('pop3', 'g-app', USERS.shared.name, genericAuth({ flow: 'clientCredentials', clientAuth: 'basic' })));
    assert.equal(app2.statusCode, 201, app2.body);
    assert.equal(app2.json().mailbox.messages, 1);
    assert.deepEqual(generic.requests.slice(before).map((r) => [r.grantType, r.via, r.clientSecret, r.scope, r.status]), [
      ['refresh_token', 'post', GENERIC.secret, 'mail.imap offline', 200],
      ['refresh_token', 'post', GENERIC.secret, undefined, 200],
      ['client_credentials', 'basic', GENERIC.secret, undefined, 200],
    ]);
  });

  test('tokens are refreshed before they expire and on reconnect; a rotated refresh token is used next', async (t) => {
    const a = await app(t, FAST);
    generic.accessTokenLifetime = 4; // renewed once less than 2 s (half the lifetime) is left
    generic.rotate = true;
    t.after(() => {
      generic.accessTokenLifetime = 3600;
      generic.rotate = false;
      idp.accessTokenLifetime = 3600;
    });
    const refreshes = () => generic.requests.filter((r) => r.grantType === 'refresh_token' && r.status === 200);

    // POP3 logs in per use: a use within the token's life reuses it, a later one renews it before expiry
    const before = refreshes().length;
    const pop = await create(a, mail('pop3', 'g-life', USERS.alice.name, genericAuth({ refreshToken: generic.refreshTokenFor(USERS.alice.name) })));
    assert.equal(pop.statusCode, 201, pop.body);
    const firstToken = introspection.requests.at(-1)!.token;
    await sleep(5);
    await call(a, 'GET', '/v1/sessions/g-life?refresh=true');
    assert.equal(refreshes().length, before + 1, 'the cached token was reused');
    assert.equal(introspection.requests.at(-1)!.token, firstToken);
    await sleep(2100);
    await call(a, 'GET', '/v1/sessions/g-life?refresh=true');
    assert.equal(refreshes().length, before + 2, 'renewed close to expiry');
    const secondToken = introspection.requests.at(-1)!.token;
    assert.notEqual(secondToken, firstToken);
    assert.ok(generic.principal(firstToken), 'the old token was still valid: renewed before it expired');
    const [first, second] = refreshes().slice(before);
    assert.notEqual(second!.refreshToken, first!.refreshToken, 'the rotated refresh token was used');

    // IMAP holds its connection: a drop makes it reconnect with a token obtained for that connect
    generic.accessTokenLifetime = 3600;
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.ports.imaps });
    t.after(() => proxy.close());
    const imap = await create(a, mail('imap', 'g-drop', USERS.alice.name, genericAuth({ refreshToken: generic.refreshTokenFor(USERS.alice.name) }), { port: proxy.port }));
    assert.equal(imap.statusCode, 201, imap.body);
    const beforeDrop = refreshes().length;
    const tokenBefore = introspection.requests.at(-1)!.token;
    proxy.resetAll();
    await waitForSession(a, 'g-drop', (s) => s.state === 'connected' && s.connectedAt !== imap.json().connectedAt);
    assert.ok(refreshes().length > beforeDrop, 'a new token for the new connection');
    assert.notEqual(introspection.requests.at(-1)!.token, tokenBefore);

    // the same through msal-node: under its 5-minute window every connect refreshes
    idp.accessTokenLifetime = 240;
    const ms = await create(a, mail('imap', 'ms-drop', USERS.alice.name, { flow: 'password' }, { password: USERS.alice.password, port: proxy.port }));
    assert.equal(ms.statusCode, 201, ms.body);
    const msRefreshes = () => idp.tokenRequests.filter((r) => r.grantType === 'refresh_token' && r.status === 200).length;
    const msBefore = msRefreshes();
    proxy.resetAll();
    await waitForSession(a, 'ms-drop', (s) => s.state === 'connected' && s.connectedAt !== ms.json().connectedAt);
    assert.ok(msRefreshes() > msBefore, 'msal-node refreshed the token for the reconnect');
  });

  test('a refused token: one fresh token, then MAIL_AUTH_FAILED; a refused refresh of a sign-in asks for a new one', async (t) => {
    const a = await app(t, FAST);
    t.after(() => {
      introspection.refuseAll = false;
      idp.refuseRefresh = false;
    });
    introspection.refuseAll = true;
    let before = idp.tokenRequests.length;
    const ms = await create(a, mail('imap', 'refused-ms', USERS.alice.name, { flow: 'password' }, { password: USERS.alice.password }));
    assert.match(String(assertProblem(ms, 'MAIL_AUTH_FAILED').detail), /IMAP/);
    assert.deepEqual(idp.tokenRequests.slice(before).map((r) => r.grantType), ['password', 'password'], 'a fresh token before giving up');
    const beforeGeneric = generic.requests.length;
    const pop = await create(a, mail('pop3', 'refused-g', USERS.alice.name, genericAuth({ refreshToken: generic.refreshTokenFor(USERS.alice.name) })));
    assert.match(String(assertProblem(pop, 'MAIL_AUTH_FAILED').detail), /refused the access token \(SASL XOAUTH2, status 401\)/);
    assert.equal(generic.requests.length - beforeGeneric, 2);
    introspection.refuseAll = false;

    // a refresh token the provider no longer knows
    const rt = generic.refreshTokenFor(USERS.alice.name);
    generic.revokeRefreshTokens();
    const revoked = await create(a, mail('imap', 'revoked-rt', USERS.alice.name, genericAuth({ refreshToken: rt })));
    assert.match(String(assertProblem(revoked, 'MAIL_AUTH_FAILED').detail), /refused the refresh token.*invalid_grant/);
    assert.doesNotMatch(revoked.body, new RegExp(rt));

    // authorization code: the token is refused on reconnect and the refresh is refused too
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.ports.imaps });
    t.after(() => proxy.close());
    const code = (await create(a, mail('imap', 'code-carol', USERS.carol.name, {}, { port: proxy.port }))).json();
    const callback = new URL(await signInOverHttp(code.authorizationUrl, { caPem: certs.caPem, username: USERS.carol.name, password: USERS.carol.password }));
    assert.equal((await call(a, 'GET', `${callback.pathname}${callback.search}`)).statusCode, 200);
    assert.equal((await call(a, 'GET', '/v1/sessions/code-carol')).json().state, 'connected');
    introspection.refused.add(introspection.requests.at(-1)!.token);
    idp.refuseRefresh = true;
    before = idp.tokenRequests.length;
    proxy.resetAll();
    const waiting = await waitForSession(a, 'code-carol', (s) => s.state === 'awaiting_authorization');
    assert.equal(waiting.lastError.code, 'AUTHORIZATION_REQUIRED');
    assert.ok(waiting.authorizationUrl && waiting.authorizationUrl !== code.authorizationUrl, 'a fresh sign-in link');
    assert.ok(idp.tokenRequests.slice(before).some((r) => r.grantType === 'refresh_token' && r.error === 'invalid_grant'), 'a refresh was tried first');
  });

  test('validation: password stays required for password logins, and each provider takes only its own fields', async (t) => {
    const a = await app(t);
    const imap = (extra: Record<string, unknown>) => ({ name: 'v', type: 'imap', host: '127.0.0.1', username: USERS.alice.name, ...extra });
    const cases: [Record<string, unknown>, string][] = [
      [imap({}), '/body/password'],
      [imap({ auth: { type: 'password' } }), '/body/password'],
      [imap({ password: 'x', auth: { type: 'password', clientId: 'c' } }), '/body/auth/clientId'],
      [imap({ password: 'x', auth: { type: 'oauth2', flow: 'clientCredentials' } }), '/body/password'],
      [imap({ auth: { type: 'oauth2', tokenUrl: generic.url } }), '/body/auth/tokenUrl'],
      [imap({ auth: { type: 'oauth2', provider: 'generic', clientId: 'c' } }), '/body/auth/tokenUrl'],
      [imap({ auth: { type: 'oauth2', provider: 'generic', tokenUrl: generic.url } }), '/body/auth/clientId'],
      [imap({ auth: { type: 'oauth2', provider: 'generic', tokenUrl: generic.url, clientId: 'c' } }), '/body/auth/clientSecret'],
      [imap({ auth: { type: 'oauth2', provider: 'generic', tokenUrl: generic.url, clientId: 'c', tenantId: 't' } }), '/body/auth/tenantId'],
      [imap({ auth: { type: 'oauth2', provider: 'generic', tokenUrl: 'http://127.0.0.1/token', clientId: 'c' } }), '/body/auth/tokenUrl'],
      [imap({ auth: { type: 'oauth2', flow: 'refreshToken' } }), '/body/auth/flow'],
    ];
    for (const [payload, path] of cases) {
      const problem = assertInvalidBody(await create(a, payload));
      const paths = (problem.errors as { path: string }[]).map((e) => e.path);
      assert.ok(paths.includes(path), `${JSON.stringify(payload)}: ${paths.join(', ')}`);
    }
    // the server's secret goes to trusted mail hosts only
    const b = await app(t, { MSB_MICROSOFT_TRUSTED_HOSTS: 'outlook.office365.com' });
    const before = idp.tokenRequests.length;
    const untrusted = await create(b, mail('imap', 'steal', USERS.shared.name, { flow: 'clientCredentials' }));
    assert.match(String(assertProblem(untrusted, 'OAUTH_CLIENT_SECRET_REQUIRED').detail), /MSB_MICROSOFT_TRUSTED_HOSTS/);
    assert.equal(idp.tokenRequests.length, before);
  });

  test('no password, client secret, refresh or access token in any log line or response body', () => {
    const tokens = [...idp.issued, ...generic.issued];
    const users = Object.values(USERS).map((u) => u.name);
    const raw = [...Object.values(USERS).map((u) => u.password), APPS.server.secret, GENERIC.secret, ...tokens];
    const payloads = tokens.filter((tk) => !tk.startsWith('code.') && !tk.startsWith('rt.') && !tk.startsWith('grt.')).flatMap((tk) => users.map((u) => xoauth2Payload(u, tk)));
    const secrets = [...raw, ...raw.map((v) => Buffer.from(v).toString('base64')), ...payloads];
    assert.ok(tokens.length > 10);
    assertNoSecrets(logSets.flat(), secrets, 'log');
    assertNoSecrets(bodies, secrets, 'response body');
  });
  test('restored after a restart from the session store: an authorization-code session comes back without a new sign-in', async (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'msb-restore-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const persist = {
      MSB_SESSION_STORE_FILE: path.join(dir, 'sessions.sealed'),
      MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'),
      MSB_TOKEN_CACHE_FILE: path.join(dir, 'tokens.sealed'),
      MSB_TOKEN_CACHE_KEY: randomBytes(32).toString('base64'),
    };
    const { app: first } = await build({ after: () => {} }, { ...env, ...persist });
    const code = (await create(first, mail('imap', 'kept-code', USERS.bob.name, {}))).json();
    const callback = new URL(await signInOverHttp(code.authorizationUrl, { caPem: certs.caPem, username: USERS.bob.name, password: USERS.bob.password }));
    assert.equal((await call(first, 'GET', `${callback.pathname}${callback.search}`)).statusCode, 200);
    assert.equal((await call(first, 'GET', '/v1/sessions/kept-code')).json().state, 'connected');
    await first.close();
    const signInsBefore = idp.tokenRequests.filter((r) => r.grantType === 'authorization_code').length;

    const second = await app(t, persist);
    const back = await waitForSession(second, 'kept-code', (s) => s.state === 'connected');
    assert.equal(back.auth.flow, 'authorizationCode');
    assert.equal(idp.tokenRequests.filter((r) => r.grantType === 'authorization_code').length, signInsBefore, 'no new sign-in');
  });

  test('restored after a restart from Redis (replicas): the sign-in and its tokens come back from there, sealed', async (t) => {
    const redis = await startRedis();
    t.after(() => redis.close());
    const shared = { MSB_REDIS_URL: redis.url, MSB_SESSION_STORE_KEY: randomBytes(32).toString('base64'), MSB_REPLICA_SECRET: randomBytes(24).toString('base64'), MSB_LEASE_TTL_MS: '3000' };
    const { app: first } = await build({ after: () => {} }, { ...env, ...shared });
    const code = (await create(first, mail('imap', 'kept-redis', USERS.carol.name, {}))).json();
    const callback = new URL(await signInOverHttp(code.authorizationUrl, { caPem: certs.caPem, username: USERS.carol.name, password: USERS.carol.password }));
    assert.equal((await call(first, 'GET', `${callback.pathname}${callback.search}`)).statusCode, 200);
    assert.equal((await call(first, 'GET', '/v1/sessions/kept-redis')).json().state, 'connected');
    await first.close();
    const signInsBefore = idp.tokenRequests.filter((r) => r.grantType === 'authorization_code').length;
    const client = new Redis(redis.url);
    t.after(() => client.disconnect());
    const tokens = await client.hgetall('msb:tokens');
    assert.ok(Object.keys(tokens).length > 0, 'the token cache is in Redis');
    for (const token of idp.issued) assert.ok(!Object.values(tokens).some((v) => v.includes(token)), 'sealed, no token in clear');

    const second = await app(t, shared);
    const back = await waitForSession(second, 'kept-redis', (s) => s.state === 'connected');
    assert.equal(back.auth.flow, 'authorizationCode');
    assert.equal(idp.tokenRequests.filter((r) => r.grantType === 'authorization_code').length, signInsBefore, 'no new sign-in');
  });
});
