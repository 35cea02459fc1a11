import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { build, type TestApp } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { APPS, USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { startFakeIdentity, type FakeIdentity } from '../harness/fake-identity.js';
import { freePort } from '../harness/ports.js';

/** EWS sessions with Basic, ROPC and client credentials, through the HTTP API against local HTTPS fakes. */
describe('EWS sessions through the HTTP API', () => {
  let world: EwsWorld;
  const logSets: string[][] = [];
  const bodies: string[] = [];

  before(async () => {
    world = await startEwsWorld();
  });
  after(async () => {
    await world?.close();
  });

  async function app(t: Parameters<typeof build>[0], env: Record<string, string> = {}, secretEnv: Record<string, string> = {}): Promise<TestApp['app']> {
    const built = await build(t, { ...world.env, ...env }, secretEnv);
    logSets.push(built.logs);
    return built.app;
  }

  async function create(a: TestApp['app'], body: Record<string, unknown>) {
    const res = await a.inject({ method: 'POST', url: '/v1/sessions', payload: body });
    bodies.push(res.body);
    return res;
  }

  const basic = (name: string, extra: Record<string, unknown> = {}) => ({
    name, type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'basic' }, ...extra,
  });

  test('Basic: connects, shows Inbox counts, reads them live, sends the Exchange version, closes', async (t) => {
    const a = await app(t);
    const created = await create(a, basic('ews-basic'));
    assert.equal(created.statusCode, 201, created.body);
    const s = created.json();
    assert.equal(s.state, 'connected');
    assert.equal(s.type, 'ews');
    assert.deepEqual(s.mailbox && { name: s.mailbox.name, messages: s.mailbox.messages, unseen: s.mailbox.unseen }, { name: 'Inbox', messages: 10, unseen: 0 });
    assert.equal(s.url, world.ews.url);
    assert.equal(s.exchangeVersion, 'Exchange2013');
    assert.deepEqual(s.auth, { type: 'basic' });
    assert.deepEqual(s.warnings, []);
    assert.equal(s.tls.customCa, false);
    // the last GetFolder for the Inbox: the proof (the watcher's SyncFolderItems for new mail follows it)
    const seen = world.ews.requests.filter((r) => r.operation === 'GetFolder' && r.folder === 'inbox').at(-1)!;
    assert.equal(seen.auth, 'basic');
    assert.equal(seen.version, 'Exchange2013');
    assert.equal(seen.operation, 'GetFolder');
    assert.equal(seen.anchorMailbox, undefined, 'Basic sends no X-AnchorMailbox');

    world.ews.mailboxes[USERS.alice.name] = { total: 12, unread: 5 };
    await sleep(5); // refresh=true skips the live read when the cached summary is 0 ms old
    const live = await a.inject({ method: 'GET', url: '/v1/sessions/ews-basic?refresh=true' });
    bodies.push(live.body);
    assert.equal(live.json().mailbox.messages, 12);
    assert.equal(live.json().mailbox.unseen, 5);

    const again = await create(a, basic('ews-basic'));
    assert.equal(again.statusCode, 200, 'the same settings again are idempotent');
    assertProblem(await create(a, basic('ews-basic', { exchangeVersion: 'Exchange2010' })), 'SESSION_CONFLICT');

    const v2010 = await create(a, basic('ews-2010', { exchangeVersion: 'Exchange2010_SP2' }));
    assert.equal(v2010.statusCode, 201, v2010.body);
    assert.equal(world.ews.requests.at(-1)!.version, 'Exchange2010_SP2');

    assert.equal((await a.inject({ method: 'DELETE', url: '/v1/sessions/ews-basic' })).statusCode, 204);
    assertProblem(await a.inject({ method: 'GET', url: '/v1/sessions/ews-basic' }), 'SESSION_NOT_FOUND');
    world.ews.mailboxes[USERS.alice.name] = { total: 10, unread: 0 };
  });

  test('Basic: a wrong password is MAIL_AUTH_FAILED and nothing is kept', async (t) => {
    const a = await app(t);
    const res = await create(a, basic('ews-badpw', { password: 'Wrong-Pw-93f1' }));
    const problem = assertProblem(res, 'MAIL_AUTH_FAILED');
    assert.match(String(problem.detail), /401/);
    assert.doesNotMatch(res.body, /Wrong-Pw-93f1/);
    assertProblem(await a.inject({ method: 'GET', url: '/v1/sessions/ews-badpw' }), 'SESSION_NOT_FOUND');
  });

  test('SOAP fault, an answer without a folder and a refused mailbox get stable codes', async (t) => {
    const a = await app(t);
    world.ews.faultCode = 'ErrorInternalServerError';
    try {
      const fault = assertProblem(await create(a, basic('ews-fault')), 'MAIL_PROTOCOL_ERROR');
      assert.match(String(fault.detail), /ErrorInternalServerError/);
    } finally {
      world.ews.faultCode = undefined;
    }
    world.ews.emptyFolders = true;
    try {
      // ews-javascript-api resolves null here instead of rejecting: the connector must notice
      const empty = assertProblem(await create(a, basic('ews-empty')), 'MAIL_PROTOCOL_ERROR');
      assert.match(String(empty.detail), /no folder/);
    } finally {
      world.ews.emptyFolders = false;
    }
    const mailbox = world.ews.mailboxes[USERS.carol.name];
    delete world.ews.mailboxes[USERS.carol.name];
    try {
      const refused = await create(a, basic('ews-nomailbox', { username: USERS.carol.name, password: USERS.carol.password }));
      assert.match(String(assertProblem(refused, 'EWS_ACCESS_DENIED').detail), /ErrorNonExistentMailbox/);
    } finally {
      world.ews.mailboxes[USERS.carol.name] = mailbox!;
    }
  });

  test('TLS is verified: untrusted without the CA, trusted with a per-session tls.ca; refused port', async (t) => {
    const a = await app(t, { MSB_EXTRA_CA_FILE: '' });
    assertProblem(await create(a, basic('ews-untrusted')), 'MAIL_TLS_FAILED');
    const trusted = await create(a, basic('ews-session-ca', { tls: { ca: world.certs.caPem } }));
    assert.equal(trusted.statusCode, 201, trusted.body);
    assert.equal(trusted.json().tls.customCa, true);
    const closed = await freePort();
    const refused = await create(a, basic('ews-refused', { url: `https://127.0.0.1:${closed}/EWS/Exchange.asmx`, timeouts: { connectMs: 3000 } }));
    assertProblem(refused, 'MAIL_CONNECTION_REFUSED');
  });

  test('OAuth2 password flow (ROPC): token from the identity provider, bearer to EWS', async (t) => {
    const a = await app(t);
    const before = world.idp.tokenRequests.length;
    const res = await create(a, { name: 'ews-ropc', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'oauth2', flow: 'password' } });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().auth, {
      type: 'oauth2', flow: 'password', clientId: APPS.public.id, tenantId: world.idp.tenantId, authorityHost: world.idp.host, clientSecretSource: 'none',
    });
    const grants = world.idp.tokenRequests.slice(before);
    assert.deepEqual(grants.map((g) => [g.grantType, g.username, g.clientId, g.clientSecret, g.status]), [['password', USERS.alice.name, APPS.public.id, undefined, 200]]);
    assert.match(grants[0]!.scope!, new RegExp(`^https://127\\.0\\.0\\.1:${world.ews.port}/EWS\\.AccessAsUser\\.All`));
    const seen = world.ews.requests.at(-1)!;
    assert.equal(seen.auth, 'bearer');
    assert.equal(seen.principal, USERS.alice.name);
    assert.equal(seen.anchorMailbox, USERS.alice.name);
    assert.equal(res.json().mailbox.messages, 10);
  });

  test('OAuth2 password flow: MFA required says to use the authorization code flow; a wrong password is MAIL_AUTH_FAILED', async (t) => {
    const a = await app(t);
    const mfa = await create(a, { name: 'ews-mfa', type: 'ews', url: world.ews.url, username: USERS.mfa.name, password: USERS.mfa.password, auth: { type: 'oauth2', flow: 'password' } });
    const problem = assertProblem(mfa, 'OAUTH_MFA_REQUIRED');
    assert.match(String(problem.detail), /AADSTS50076/);
    assert.match(String(problem.detail), /authorizationCode/);
    const wrong = await create(a, { name: 'ews-ropc-bad', type: 'ews', url: world.ews.url, username: USERS.alice.name, password: 'Not-Her-Pw-1', auth: { type: 'oauth2', flow: 'password' } });
    assert.match(String(assertProblem(wrong, 'MAIL_AUTH_FAILED').detail), /AADSTS50126/);
    assertProblem(await a.inject({ method: 'GET', url: '/v1/sessions/ews-mfa' }), 'SESSION_NOT_FOUND');
  });

  test('client credentials: server secret on a trusted endpoint, impersonation and X-AnchorMailbox', async (t) => {
    const a = await app(t, { MSB_EWS_CLIENT_ID: APPS.server.id, MSB_EWS_CLIENT_SECRET: APPS.server.secret, MSB_EWS_TRUSTED_HOSTS: `127.0.0.1:${world.ews.port}` });
    const before = world.idp.tokenRequests.length;
    const res = await create(a, {
      name: 'ews-app', type: 'ews', url: world.ews.url, username: USERS.shared.name, auth: { type: 'oauth2', flow: 'clientCredentials' },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().auth.clientSecretSource, 'server');
    assert.equal(res.json().auth.impersonate, USERS.shared.name);
    assert.equal(res.json().mailbox.messages, 14);
    const grant = world.idp.tokenRequests.slice(before);
    assert.deepEqual(grant.map((g) => [g.grantType, g.clientId, g.clientSecret, g.scope]), [
      ['client_credentials', APPS.server.id, APPS.server.secret, `https://127.0.0.1:${world.ews.port}/.default`],
    ]);
    const seen = world.ews.requests.at(-1)!;
    assert.equal(seen.principal, 'app');
    assert.equal(seen.impersonated, USERS.shared.name);
    assert.equal(seen.anchorMailbox, USERS.shared.name);

    // another mailbox through impersonate; the app token comes from the cache
    const other = await create(a, {
      name: 'ews-app-alice', type: 'ews', url: world.ews.url, username: USERS.shared.name, auth: { type: 'oauth2', flow: 'clientCredentials', impersonate: USERS.alice.name },
    });
    assert.equal(other.statusCode, 201, other.body);
    assert.equal(world.ews.requests.at(-1)!.impersonated, USERS.alice.name);
    assert.equal(world.ews.requests.at(-1)!.anchorMailbox, USERS.alice.name);
    assert.equal(world.idp.tokenRequests.length, before + 1, 'the app token was reused from the cache');
  });

  test('client credentials with the username given by reference: impersonate shows the reference, Exchange gets the value', async (t) => {
    const a = await app(
      t,
      { MSB_EWS_CLIENT_ID: APPS.server.id, MSB_EWS_CLIENT_SECRET: APPS.server.secret, MSB_EWS_TRUSTED_HOSTS: `127.0.0.1:${world.ews.port}` },
      { MSB_SECRET_SHARED_USER: USERS.shared.name },
    );
    const res = await create(a, { name: 'ews-app-ref', type: 'ews', url: world.ews.url, username: { secret: 'shared-user' }, auth: { type: 'oauth2', flow: 'clientCredentials' } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().username, 'secret:shared-user');
    assert.equal(res.json().auth.impersonate, 'secret:shared-user');
    const inspected = await a.inject({ method: 'GET', url: '/v1/sessions/ews-app-ref' });
    const list = await a.inject({ method: 'GET', url: '/v1/sessions' });
    for (const body of [res.body, inspected.body, list.body]) assert.equal(body.includes(USERS.shared.name), false, body);
    const seen = world.ews.requests.at(-1)!;
    assert.equal(seen.impersonated, USERS.shared.name);
    assert.equal(seen.anchorMailbox, USERS.shared.name);
  });

  test('the server secret is never sent for an endpoint or authority that a caller names', async (t) => {
    const idp2: FakeIdentity = await startFakeIdentity({ users: {}, clients: { [APPS.server.id]: { secret: APPS.server.secret }, [APPS.bot.id]: { secret: APPS.bot.secret } } });
    t.after(() => idp2.close());
    // the server trusts only outlook.office365.com for its secret (the default); the fake EWS is caller-named
    const a = await app(t, { MSB_EWS_CLIENT_ID: APPS.server.id, MSB_EWS_CLIENT_SECRET: APPS.server.secret });
    const before = world.idp.tokenRequests.length;
    const appOnly = { type: 'ews', url: world.ews.url, username: USERS.shared.name };
    const refused = await create(a, { ...appOnly, name: 'steal-1', auth: { type: 'oauth2', flow: 'clientCredentials' } });
    assert.match(String(assertProblem(refused, 'OAUTH_CLIENT_SECRET_REQUIRED').detail), /MSB_EWS_TRUSTED_HOSTS/);
    const delegated = await create(a, { ...appOnly, name: 'steal-2', username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'oauth2', flow: 'password' } });
    assertProblem(delegated, 'OAUTH_CLIENT_SECRET_REQUIRED');

    // a caller-named authority, even with a trusted EWS host
    const b = await app(t, { MSB_EWS_CLIENT_ID: APPS.server.id, MSB_EWS_CLIENT_SECRET: APPS.server.secret, MSB_EWS_TRUSTED_HOSTS: `127.0.0.1:${world.ews.port}` });
    const viaIdp2 = await create(b, { ...appOnly, name: 'steal-3', auth: { type: 'oauth2', flow: 'clientCredentials', authorityHost: idp2.host, tenantId: idp2.tenantId } });
    assert.match(String(assertProblem(viaIdp2, 'OAUTH_CLIENT_SECRET_REQUIRED').detail), /MSB_OAUTH_AUTHORITY_HOST/);

    // the caller's own secret is what goes there
    const own = await create(b, {
      ...appOnly, name: 'own-secret', auth: { type: 'oauth2', flow: 'clientCredentials', clientId: APPS.bot.id, clientSecret: APPS.bot.secret, authorityHost: idp2.host, tenantId: idp2.tenantId },
    });
    assert.equal(own.statusCode, 422, own.body); // idp2's tokens are unknown to the fake EWS: 401 there
    assertProblem(own, 'MAIL_AUTH_FAILED');
    assert.deepEqual(idp2.tokenRequests.map((r) => [r.clientId, r.clientSecret]), [[APPS.bot.id, APPS.bot.secret]]);
    const ownHere = await create(a, { ...appOnly, name: 'own-secret-2', auth: { type: 'oauth2', flow: 'clientCredentials', clientId: APPS.bot.id, clientSecret: APPS.bot.secret } });
    assert.equal(ownHere.statusCode, 201, ownHere.body);
    assert.equal(ownHere.json().auth.clientSecretSource, 'request');

    const sent = [...world.idp.tokenRequests.slice(before), ...idp2.tokenRequests].map((r) => r.clientSecret);
    assert.ok(!sent.includes(APPS.server.secret), 'the server secret reached no caller-named endpoint');
  });

  test('a destination the outbound policy refuses is refused before any sign-in or token request', async (t) => {
    // names only in the allow list: a forbidden host is refused before any DNS query. (The Exchange Online
    // retirement warning itself is checked through prepare() in test/kinds/ews-prepare.test.ts.)
    const a = await app(t, { MSB_OUTBOUND_ALLOW: 'localhost' });
    const tokenRequests = world.idp.tokenRequests.length;
    const oauth = await create(a, { name: 'exo', type: 'ews', domain: 'outlook.office365.com', username: USERS.bob.name, auth: { type: 'oauth2' } });
    assertProblem(oauth, 'DESTINATION_FORBIDDEN');
    const ropc = await create(a, { name: 'exo-ropc', type: 'ews', domain: 'outlook.office365.com', username: USERS.bob.name, password: USERS.bob.password, auth: { type: 'oauth2', flow: 'password' } });
    assertProblem(ropc, 'DESTINATION_FORBIDDEN');
    assert.equal(world.idp.tokenRequests.length, tokenRequests, 'no password or code went to the identity provider');
    const basicExo = await create(a, { name: 'exo-basic', type: 'ews', username: USERS.bob.name, password: USERS.bob.password, auth: { type: 'basic' } });
    assertProblem(basicExo, 'DESTINATION_FORBIDDEN');
  });

  test('invalid combinations are refused before connecting', async (t) => {
    const a = await app(t, { MSB_EWS_TENANT_ID: '' });
    // schema errors are 400 VALIDATION_ERROR; fields that do not fit together are 422 INVALID_SETTINGS
    const cases: [Record<string, unknown>, string, 'VALIDATION_ERROR' | 'INVALID_SETTINGS'][] = [
      [{ ...basic('v1'), password: undefined }, '/body/password', 'INVALID_SETTINGS'],
      [{ ...basic('v2'), auth: { type: 'basic', clientId: APPS.public.id } }, '/body/auth/clientId', 'INVALID_SETTINGS'],
      [{ ...basic('v3'), auth: { type: 'oauth2' } }, '/body/password', 'INVALID_SETTINGS'],
      [{ ...basic('v4'), password: undefined, auth: { type: 'oauth2', impersonate: USERS.shared.name } }, '/body/auth/impersonate', 'INVALID_SETTINGS'],
      [{ ...basic('v5'), password: undefined, auth: { type: 'oauth2', flow: 'clientCredentials', clientId: APPS.bot.id, clientSecret: 'x-secret' } }, '/body/auth/tenantId', 'INVALID_SETTINGS'],
      [{ ...basic('v6'), exchangeVersion: 'Exchange2003' }, '/body/exchangeVersion', 'VALIDATION_ERROR'],
      [{ ...basic('v7'), url: 'http://127.0.0.1/EWS/Exchange.asmx' }, '/body/url', 'VALIDATION_ERROR'],
      [{ ...basic('v8'), auth: { type: 'kerberos' } }, '/body/auth/type', 'VALIDATION_ERROR'],
      [{ ...basic('v9'), auth: { type: 'oauth2', flow: 'device' } }, '/body/auth/flow', 'VALIDATION_ERROR'],
    ];
    for (const [payload, path, code] of cases) {
      const res = await create(a, payload);
      const problem = assertProblem(res, code);
      const paths = (problem.errors as { path: string }[]).map((e) => e.path);
      assert.ok(paths.includes(path), `${JSON.stringify(payload)}: ${paths.join(', ')}`);
    }
    const b = await app(t, { MSB_EWS_CLIENT_ID: '' });
    const noClient = await create(b, { ...basic('v10'), password: undefined, auth: { type: 'oauth2' } });
    assert.ok((assertProblem(noClient, 'INVALID_SETTINGS').errors as { path: string }[]).some((e) => e.path === '/body/auth/clientId'));
  });

  test('no password, client secret or token in any log line or response body', () => {
    assertNoSecrets(logSets.flat(), world.secrets(), 'log');
    assertNoSecrets(bodies, world.secrets(), 'response body');
  });
});
