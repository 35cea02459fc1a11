import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { build, type TestApp } from '../helper.js';
import { assertInvalidBody, assertProblem } from '../problem-assert.js';
import { startFakeGraph } from '../harness/fake-graph.js';
import { startFakeIdentity } from '../harness/fake-identity.js';
import { APPS, INBOXES, USERS, assertNoSecrets, startGraphWorld, type GraphWorld } from '../harness/graph-world.js';
import { signInOverHttp } from '../harness/sign-in.js';

type App = TestApp['app'];

/** outlook sessions through the HTTP API: msal-node against the fake identity provider, plain HTTPS to a fake Graph. */
describe('outlook sessions (Microsoft Graph) through the HTTP API', () => {
  let world: GraphWorld;
  const logSets: string[][] = [];
  const bodies: string[] = [];

  before(async () => {
    world = await startGraphWorld();
  });
  after(async () => {
    await world?.close();
  });

  /** Graph requests of the sessions themselves, without the delta query with which they start watching the Inbox. */
  const calls = () => world.graph.requests.filter((r) => !r.path.endsWith('/messages/delta'));

  async function app(t: Parameters<typeof build>[0], env: Record<string, string> = {}, secretEnv: Record<string, string> = {}): Promise<App> {
    const built = await build(t, { ...world.env, ...env }, secretEnv);
    logSets.push(built.logs);
    return built.app;
  }

  async function call(a: App, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) {
    const res = await a.inject({ method, url, ...(payload ? { payload } : {}) });
    bodies.push(res.body);
    return res;
  }
  const create = (a: App, body: Record<string, unknown>) => call(a, 'POST', '/v1/sessions', body);
  const counts = (s: { mailbox: { name: string; messages: number; unseen: number } }) => [s.mailbox.name, s.mailbox.messages, s.mailbox.unseen];
  /** The path and query of the redirect the identity provider sends the browser to. */
  const local = (redirect: string) => {
    const u = new URL(redirect);
    return `${u.pathname}${u.search}`;
  };
  const signIn = async (a: App, authorizationUrl: string, user: { name: string; password: string }) => {
    const callback = await signInOverHttp(authorizationUrl, { caPem: world.certs.caPem, username: user.name, password: user.password });
    const page = await call(a, 'GET', local(callback));
    assert.equal(page.statusCode, 200, page.body);
  };

  test('the server configuration alone: a bot gives a mailbox, the app-only token reads /users/{id}', async (t) => {
    const a = await app(t);
    const tokensBefore = world.idp.tokenRequests.length;
    const graphBefore = calls().length;
    const res = await create(a, { name: 'shared-app', type: 'outlook', mailbox: USERS.shared.name });
    assert.equal(res.statusCode, 201, res.body);
    const s = res.json();
    assert.equal(s.type, 'outlook');
    assert.equal(s.state, 'connected');
    assert.deepEqual(counts(s), ['Inbox', 40, 7]);
    assert.equal(s.mailboxUser, USERS.shared.name);
    assert.equal(s.url, `${world.graph.origin}/v1.0/users/${encodeURIComponent(USERS.shared.name)}/mailFolders/inbox`);
    assert.deepEqual(s.auth, {
      type: 'oauth2', flow: 'clientCredentials', clientId: APPS.server.id, tenantId: world.idp.tenantId, authorityHost: world.idp.host, clientSecretSource: 'server',
    });
    assert.deepEqual(s.warnings, []);
    const grants = world.idp.tokenRequests.slice(tokensBefore);
    assert.deepEqual(grants.map((g) => [g.grantType, g.clientId, g.clientSecret, g.scope, g.status]), [
      ['client_credentials', APPS.server.id, APPS.server.secret, `${world.graph.origin}/.default`, 200],
    ]);
    const seen = calls().slice(graphBefore);
    assert.equal(seen.length, 1, 'one GET proves access and answers the summary');
    assert.equal(seen[0]!.principal, 'app');
    assert.equal(seen[0]!.mailbox, USERS.shared.name);
    assert.match(seen[0]!.clientRequestId ?? '', /^[0-9a-f-]{36}$/);

    // a user mailbox the same way; the app token comes from the cache
    const bob = await create(a, { name: 'bob-app', type: 'outlook', mailbox: USERS.bob.name });
    assert.equal(bob.statusCode, 201, bob.body);
    assert.deepEqual(counts(bob.json()), ['Inbox', 21, 3]);
    assert.equal(world.idp.tokenRequests.length, tokensBefore + 1, 'the app-only token was reused');

    // inspect reads the counts live
    world.graph.mailbox(USERS.bob.name).base = { total: 25, unread: 6 };
    t.after(() => (world.graph.mailbox(USERS.bob.name).base = INBOXES[USERS.bob.name]!));
    await sleep(5);
    assert.deepEqual(counts((await call(a, 'GET', '/v1/sessions/bob-app?refresh=true')).json()), ['Inbox', 25, 6]);

    assert.equal((await create(a, { name: 'bob-app', type: 'outlook', mailbox: USERS.bob.name })).statusCode, 200, 'idempotent');
    assertProblem(await create(a, { name: 'bob-app', type: 'outlook', mailbox: USERS.carol.name }), 'SESSION_CONFLICT');

    const missing = await create(a, { name: 'nobody', type: 'outlook', mailbox: 'nobody@contoso.test' });
    assert.match(String(assertProblem(missing, 'GRAPH_MAILBOX_NOT_FOUND').detail), /nobody@contoso\.test.*ErrorInvalidUser/);
    assertProblem(await call(a, 'GET', '/v1/sessions/nobody'), 'SESSION_NOT_FOUND');
    assert.equal((await call(a, 'DELETE', '/v1/sessions/shared-app')).statusCode, 204);
  });

  test('authorization code with nothing but a name: 202, sign-in, connected; with a username later sessions are silent', async (t) => {
    const a = await app(t);
    const res = await create(a, { name: 'me', type: 'outlook' });
    assert.equal(res.statusCode, 202, res.body);
    const s = res.json();
    assert.equal(s.state, 'awaiting_authorization');
    assert.equal(s.auth.flow, 'authorizationCode');
    assert.match(s.lastError.message, /sign-in by the mailbox owner/);
    const url = new URL(s.authorizationUrl);
    assert.equal(url.origin, world.idp.origin);
    assert.equal(url.searchParams.get('client_id'), APPS.server.id);
    assert.equal(url.searchParams.get('login_hint'), null, 'no username: any account may sign in');
    assert.match(url.searchParams.get('scope') ?? '', new RegExp(`${world.graph.origin.replace(/[.]/g, '\\.')}/Mail\\.ReadWrite(\\s|$)`));
    assert.match(url.searchParams.get('scope') ?? '', /offline_access/);

    await signIn(a, s.authorizationUrl, USERS.carol);
    const connected = (await call(a, 'GET', '/v1/sessions/me')).json();
    assert.equal(connected.state, 'connected');
    assert.deepEqual(counts(connected), ['Inbox', 22, 4]);
    const seen = calls().at(-1)!;
    assert.deepEqual([seen.path, seen.principal], ['/v1.0/me/mailFolders/inbox', USERS.carol.name]);

    const named = await create(a, { name: 'me-bob', type: 'outlook', username: USERS.bob.name });
    assert.equal(named.statusCode, 202, named.body);
    assert.equal(new URL(named.json().authorizationUrl).searchParams.get('login_hint'), USERS.bob.name);
    await signIn(a, named.json().authorizationUrl, USERS.bob);
    assert.deepEqual(counts((await call(a, 'GET', '/v1/sessions/me-bob')).json()), ['Inbox', 21, 3]);
    const again = await create(a, { name: 'me-bob-2', type: 'outlook', username: USERS.bob.name });
    assert.equal(again.statusCode, 201, 'the sign-in of the same account is reused silently');
  });

  test('without a username, inspect and the sign-in page show which account signed in', async (t) => {
    const a = await app(t);
    const res = await create(a, { name: 'unpinned', type: 'outlook' });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().signedInAs, undefined, 'nobody has signed in yet');
    const callback = await signInOverHttp(res.json().authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password });
    const page = await a.inject({ method: 'GET', url: local(callback), headers: { accept: 'application/json' } });
    assert.equal(page.statusCode, 200, page.body);
    assert.equal(page.json().account, USERS.carol.name);
    assert.match(page.json().message, new RegExp(`connected to the mailbox of ${USERS.carol.name.replace(/[.]/g, '\\.')}`));
    const inspected = (await call(a, 'GET', '/v1/sessions/unpinned')).json();
    assert.equal(inspected.state, 'connected');
    assert.equal(inspected.signedInAs, USERS.carol.name);
    // a pinned session does not need it: only its username can sign in
    const pinned = await create(a, { name: 'pinned', type: 'outlook', username: USERS.bob.name });
    await signIn(a, pinned.json().authorizationUrl, USERS.bob);
    assert.equal((await call(a, 'GET', '/v1/sessions/pinned')).json().signedInAs, undefined);
  });

  test('a username given by reference never shows its value: no login_hint, messages name the reference', async (t) => {
    const a = await app(t, {}, { MSB_SECRET_AP_USER: USERS.bob.name });
    const bob = USERS.bob.name;
    const res = await create(a, { name: 'by-ref', type: 'outlook', username: { secret: 'ap-user' } });
    assert.equal(res.statusCode, 202, res.body);
    const s = res.json();
    assert.equal(s.username, 'secret:ap-user');
    assert.equal(new URL(s.authorizationUrl).searchParams.get('login_hint'), null);
    assert.match(s.lastError.message, /sign-in by secret:ap-user/);
    assert.equal(res.body.includes(bob), false, res.body);
    // the redirect of /authorize neither
    const redirect = await a.inject({ method: 'GET', url: '/v1/sessions/by-ref/authorize' });
    assert.equal(redirect.statusCode, 302);
    assert.equal(String(redirect.headers.location).includes(bob), false);
    assert.equal(String(redirect.headers.location).includes(encodeURIComponent(bob)), false);

    // the wrong account signs in: the mismatch names the reference, on the page and in inspect
    const wrong = await signInOverHttp(s.authorizationUrl, { caPem: world.certs.caPem, username: USERS.carol.name, password: USERS.carol.password });
    const page = await a.inject({ method: 'GET', url: local(wrong) });
    assert.equal(page.statusCode, 422, page.body);
    assert.match(page.body, /secret:ap-user/);
    const failed = await a.inject({ method: 'GET', url: '/v1/sessions/by-ref' });
    assert.equal(failed.json().lastError.code, 'OAUTH_ACCOUNT_MISMATCH');
    assert.match(failed.json().lastError.message, /is for secret:ap-user/);
    for (const body of [page.body, failed.body]) assert.equal(body.includes(bob), false, body);

    // the right account: connected, and the page names the reference too
    await call(a, 'DELETE', '/v1/sessions/by-ref');
    const again = await create(a, { name: 'by-ref', type: 'outlook', username: { secret: 'ap-user' } });
    const right = await signInOverHttp(again.json().authorizationUrl, { caPem: world.certs.caPem, username: bob, password: USERS.bob.password });
    const ok = await a.inject({ method: 'GET', url: local(right), headers: { accept: 'application/json' } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.equal(ok.json().account, 'secret:ap-user');
    const connected = await a.inject({ method: 'GET', url: '/v1/sessions/by-ref' });
    assert.equal(connected.json().state, 'connected');
    for (const body of [ok.body, connected.body, (await a.inject({ method: 'GET', url: '/v1/sessions' })).body]) assert.equal(body.includes(bob), false, body);
  });

  test('password flow (ROPC): Inbox counts; MFA says to use the authorization code flow; a wrong password is MAIL_AUTH_FAILED', async (t) => {
    const a = await app(t);
    const before = world.idp.tokenRequests.length;
    const res = await create(a, { name: 'ropc', type: 'outlook', username: USERS.alice.name, password: USERS.alice.password });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().auth.flow, 'password');
    assert.deepEqual(counts(res.json()), ['Inbox', 20, 2]);
    const grant = world.idp.tokenRequests.slice(before);
    assert.deepEqual(grant.map((g) => [g.grantType, g.username, g.clientSecret]), [['password', USERS.alice.name, APPS.server.secret]]);
    assert.match(grant[0]!.scope!, /\/Mail\.ReadWrite( |$)/);

    const mfa = await create(a, { name: 'ropc-mfa', type: 'outlook', username: USERS.mfa.name, password: USERS.mfa.password });
    const problem = assertProblem(mfa, 'OAUTH_MFA_REQUIRED');
    assert.match(String(problem.detail), /AADSTS50076.*authorizationCode/);
    assertProblem(await create(a, { name: 'ropc-bad', type: 'outlook', username: USERS.alice.name, password: 'Wrong-Pw-77' }), 'MAIL_AUTH_FAILED');
  });

  test('shared mailboxes with a delegated sign-in: Mail.ReadWrite.Shared and /users/{id}; not shared is GRAPH_ACCESS_DENIED', async (t) => {
    const a = await app(t);
    const res = await create(a, { name: 'shared-alice', type: 'outlook', username: USERS.alice.name, password: USERS.alice.password, mailbox: USERS.shared.name });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(counts(res.json()), ['Inbox', 40, 7]);
    const seen = calls().at(-1)!;
    assert.deepEqual([seen.mailbox, seen.principal], [USERS.shared.name, USERS.alice.name]);
    assert.match(seen.scope ?? '', /\/Mail\.ReadWrite\.Shared/);

    const denied = await create(a, { name: 'shared-bob', type: 'outlook', username: USERS.bob.name, password: USERS.bob.password, mailbox: USERS.shared.name });
    assert.match(String(assertProblem(denied, 'GRAPH_ACCESS_DENIED').detail), /shared\.mailbox@contoso\.test.*ErrorAccessDenied/);
  });

  test('401: a revoked token gets one fresh token; a refused refresh asks for a new sign-in; app-only is MAIL_AUTH_FAILED', async (t) => {
    const a = await app(t);
    t.after(() => (world.idp.refuseRefresh = false));
    const s = (await create(a, { name: 'revoked', type: 'outlook', username: USERS.carol.name })).json();
    await signIn(a, s.authorizationUrl, USERS.carol);
    const first = calls().at(-1)!.token!;
    const refreshes = () => world.idp.tokenRequests.filter((r) => r.grantType === 'refresh_token').length;

    world.graph.revoked.add(first);
    const before = refreshes();
    await sleep(5);
    const live = (await call(a, 'GET', '/v1/sessions/revoked?refresh=true')).json();
    assert.equal(live.state, 'connected', JSON.stringify(live.lastError));
    assert.equal(refreshes(), before + 1, 'the 401 made msal-node refresh although the token had not expired');
    const second = calls().at(-1)!;
    assert.notEqual(second.token, first);
    assert.equal(second.status, 200);

    world.graph.revoked.add(second.token!);
    world.idp.refuseRefresh = true;
    await sleep(5);
    const refused = (await call(a, 'GET', '/v1/sessions/revoked?refresh=true')).json();
    assert.equal(refused.state, 'awaiting_authorization');
    assert.equal(refused.lastError.code, 'AUTHORIZATION_REQUIRED');
    assert.ok(refused.authorizationUrl && refused.authorizationUrl !== s.authorizationUrl, 'a fresh authorization URL');

    const appOnlyBefore = world.idp.tokenRequests.length;
    world.graph.script.push({ status: 401, code: 'InvalidAuthenticationToken' }, { status: 401, code: 'InvalidAuthenticationToken' });
    const appOnly = await create(a, { name: 'app-401', type: 'outlook', mailbox: USERS.bob.name });
    assert.match(String(assertProblem(appOnly, 'MAIL_AUTH_FAILED').detail), /HTTP 401.*InvalidAuthenticationToken/);
    assert.deepEqual(world.idp.tokenRequests.slice(appOnlyBefore).map((r) => r.grantType), ['client_credentials', 'client_credentials'], 'one fresh token, not from the cache');
  });

  test('429 and 5xx are retried: the wait is at least Retry-After; past the deadline or the attempts it is a retryable code', async (t) => {
    const a = await app(t, { MSB_GRAPH_MAX_ATTEMPTS: '3' });
    const g = world.graph;
    let from = calls().length;
    g.script.push({ status: 429, retryAfter: '1', code: 'ApplicationThrottled' });
    const throttled = await create(a, { name: 'throttled', type: 'outlook', mailbox: USERS.carol.name });
    assert.equal(throttled.statusCode, 201, throttled.body);
    let seen = calls().slice(from);
    assert.deepEqual(seen.map((r) => r.status), [429, 200]);
    assert.equal(seen[0]!.retryAfter, '1');
    assert.ok(seen[1]!.at - seen[0]!.at >= 1000, `the retry came ${(seen[1]!.at - seen[0]!.at).toFixed(1)} ms after the 429 with Retry-After: 1`);

    // 5xx without Retry-After (one of them not even JSON): exponential backoff, then success
    from = calls().length;
    g.script.push({ status: 503, html: true }, { status: 504, code: 'GatewayTimeout' });
    const flaky = await create(a, { name: 'flaky', type: 'outlook', mailbox: USERS.carol.name });
    assert.equal(flaky.statusCode, 201, flaky.body);
    assert.deepEqual(calls().slice(from).map((r) => r.status), [503, 504, 200]);

    // a Retry-After beyond the create deadline: answered at once, with when to try again
    from = calls().length;
    g.script.push({ status: 429, retryAfter: '120', code: 'ApplicationThrottled' });
    const later = await create(a, { name: 'later', type: 'outlook', mailbox: USERS.carol.name });
    const problem = assertProblem(later, 'GRAPH_THROTTLED');
    assert.equal(problem.retryAfterSeconds, 120);
    assert.equal(later.headers['retry-after'], '120');
    assert.equal(calls().length - from, 1, 'no wait past the deadline');

    // attempts are bounded (MSB_GRAPH_MAX_ATTEMPTS=3)
    from = calls().length;
    g.script.push({ status: 503, retryAfter: '0' }, { status: 503, retryAfter: '0' }, { status: 503, retryAfter: '0' }, { status: 503 });
    const down = await create(a, { name: 'down', type: 'outlook', mailbox: USERS.carol.name });
    const unavailable = assertProblem(down, 'GRAPH_UNAVAILABLE');
    assert.match(String(unavailable.detail), /HTTP 503 after 3 attempts/);
    assert.equal(typeof unavailable.retryAfterSeconds, 'number');
    assert.equal(calls().length - from, 3);
    g.script.length = 0;
  });

  test("the server's secret never goes to a Graph host or authority that a caller names", async (t) => {
    const graph2 = await startFakeGraph({ verifyToken: (token) => world.idp.principal(token), mailboxes: INBOXES });
    const idp2 = await startFakeIdentity({ users: {}, clients: { [APPS.server.id]: { secret: APPS.server.secret } } });
    t.after(() => Promise.all([graph2.close(), idp2.close()]));
    const a = await app(t);
    const before = world.idp.tokenRequests.length;

    const elsewhere = await create(a, { name: 'steal-1', type: 'outlook', mailbox: USERS.shared.name, graphHost: graph2.host });
    assert.match(String(assertProblem(elsewhere, 'OAUTH_CLIENT_SECRET_REQUIRED').detail), /MSB_GRAPH_HOST/);
    const delegated = await create(a, { name: 'steal-2', type: 'outlook', graphHost: graph2.host, username: USERS.alice.name, password: USERS.alice.password });
    assertProblem(delegated, 'OAUTH_CLIENT_SECRET_REQUIRED');
    const viaIdp2 = await create(a, { name: 'steal-3', type: 'outlook', mailbox: USERS.shared.name, auth: { authorityHost: idp2.host, tenantId: idp2.tenantId } });
    assert.match(String(assertProblem(viaIdp2, 'OAUTH_CLIENT_SECRET_REQUIRED').detail), /MSB_OAUTH_AUTHORITY_HOST/);
    assert.equal(world.idp.tokenRequests.length, before, 'nothing was even asked for');
    assert.equal(idp2.tokenRequests.length, 0);

    // a bot's own app registration may go anywhere the outbound policy allows
    const own = await create(a, {
      name: 'own-app', type: 'outlook', mailbox: USERS.shared.name, graphHost: graph2.host, auth: { clientId: APPS.bot.id, clientSecret: APPS.bot.secret },
    });
    assert.equal(own.statusCode, 201, own.body);
    assert.equal(own.json().auth.clientSecretSource, 'request');
    assert.equal(graph2.requests.at(-1)!.principal, 'app');
    assert.deepEqual(world.idp.tokenRequests.slice(before).map((r) => [r.clientId, r.clientSecret, r.scope]), [[APPS.bot.id, APPS.bot.secret, `${graph2.origin}/.default`]]);
  });

  test('the outbound policy is checked before any token is requested', async (t) => {
    const a = await app(t, { MSB_OUTBOUND_DENY: '127.0.0.0/8' });
    const tokens = world.idp.tokenRequests.length;
    const authorizes = world.idp.authorizeRequests.length;
    const requests = calls().length;
    assertProblem(await create(a, { name: 'denied-app', type: 'outlook', mailbox: USERS.shared.name }), 'DESTINATION_FORBIDDEN');
    assertProblem(await create(a, { name: 'denied-ropc', type: 'outlook', username: USERS.alice.name, password: USERS.alice.password }), 'DESTINATION_FORBIDDEN');
    assertProblem(await create(a, { name: 'denied-code', type: 'outlook' }), 'DESTINATION_FORBIDDEN');
    assert.equal(world.idp.tokenRequests.length, tokens, 'no token was requested for a forbidden destination');
    assert.equal(world.idp.authorizeRequests.length, authorizes);
    assert.equal(calls().length, requests);
  });

  test('invalid combinations are refused before anything is sent', async (t) => {
    const a = await app(t);
    const cases: [Record<string, unknown>, string][] = [
      [{ password: USERS.alice.password }, '/body/username'],
      [{ mailbox: USERS.bob.name, password: USERS.alice.password, auth: { flow: 'clientCredentials' } }, '/body/password'],
      [{ auth: { flow: 'clientCredentials' } }, '/body/mailbox'],
      [{ mailbox: USERS.bob.name, username: USERS.alice.name, auth: { flow: 'clientCredentials' } }, '/body/username'],
      [{ auth: { flow: 'device' } }, '/body/auth/flow'],
      [{ graphHost: 'https://graph.microsoft.com' }, '/body/graphHost'],
      [{ mailbox: 'a/../b@contoso.test' }, '/body/mailbox'],
      [{ host: 'graph.microsoft.com' }, '/body/host'],
    ];
    for (const [extra, path] of cases) {
      const problem = assertInvalidBody(await create(a, { name: 'v', type: 'outlook', ...extra }));
      const paths = (problem.errors as { path: string }[]).map((e) => e.path);
      assert.ok(paths.includes(path), `${JSON.stringify(extra)}: ${paths.join(', ')}`);
    }
    const b = await app(t, { MSB_GRAPH_CLIENT_ID: '', MSB_GRAPH_CLIENT_SECRET: '' });
    const noClient = assertInvalidBody(await create(b, { name: 'v', type: 'outlook' }));
    assert.ok((noClient.errors as { path: string }[]).some((e) => e.path === '/body/auth/clientId'));
    const noSecret = await create(b, { name: 'v', type: 'outlook', mailbox: USERS.bob.name, auth: { clientId: APPS.public.id } });
    assertProblem(noSecret, 'OAUTH_CLIENT_SECRET_REQUIRED');
  });

  test('no password, client secret, token or code in any log line or response body', () => {
    assert.ok(world.idp.issued.length > 5, 'tokens were issued and are checked');
    assertNoSecrets(logSets.flat(), world.secrets(), 'log');
    assertNoSecrets(bodies, world.secrets(), 'response body');
  });
});
