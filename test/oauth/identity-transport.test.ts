import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { outboundSecureContext } from '../../src/net/trust.js';
import { HttpsNetworkClient } from '../../src/oauth/https-network.js';
import { recorder } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import type { HostileHttpAnswer } from '../harness/fake-ews.js';
import { USERS, assertNoSecrets, startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { freePort } from '../harness/ports.js';
import { startSilentServer, type SilentServer } from '../harness/tcp-tools.js';

/**
 * What msal-node's HTTP client (src/oauth/https-network.ts) makes of an identity provider that cannot be
 * used: an untrusted certificate, nothing listening, no answer, an answer too large, cut or not JSON.
 * msal-node reports all of them as "network_error" / "endpoints_resolution_error"; the client keeps the
 * transport's own reason, which the problem+json detail must name (an operator fixes a CA file, a port or
 * a proxy from it). Each case creates an EWS session with the password flow (ROPC), whose first step is
 * the token; no EWS request may follow, and the password may appear nowhere.
 */
describe('identity provider transport failures through the HTTP API', () => {
  let world: EwsWorld;
  let silent: SilentServer;
  const logSets: string[][] = [];
  const bodies: string[] = [];

  before(async () => {
    world = await startEwsWorld();
    silent = await startSilentServer();
  });
  after(async () => {
    await silent?.close();
    await world?.close();
  });

  const { app, create } = recorder(() => world.env, { logSets, bodies });
  const ropc = (name: string) => ({
    name, type: 'ews', url: world.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'oauth2', flow: 'password' },
  });

  test('an untrusted certificate: OAUTH_PROVIDER_UNAVAILABLE that says to add the CA to MSB_EXTRA_CA_FILE', async (t) => {
    const { MSB_EXTRA_CA_FILE: _trusted, ...untrusted } = world.env;
    const a = await app(t, { ...untrusted, MSB_EXTRA_CA_FILE: '' });
    const tokens = world.idp.tokenRequests.length;
    const ews = world.ews.requests.length;
    const problem = assertProblem(await create(a, ropc('idp-untrusted')), 'OAUTH_PROVIDER_UNAVAILABLE');
    assert.match(String(problem.detail), /the TLS handshake failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\): add the identity provider's CA to MSB_EXTRA_CA_FILE \[endpoints_resolution_error\]/);
    assert.equal(world.idp.tokenRequests.length, tokens, 'no token request over an unverified connection');
    assert.equal(world.ews.requests.length, ews);
  });

  test('nothing listens at the authority: connection refused (ECONNREFUSED)', async (t) => {
    const a = await app(t, { MSB_OAUTH_AUTHORITY_HOST: `127.0.0.1:${await freePort()}` });
    const problem = assertProblem(await create(a, ropc('idp-refused')), 'OAUTH_PROVIDER_UNAVAILABLE');
    assert.match(String(problem.detail), /could not be used: connection refused \(ECONNREFUSED\)/);
  });

  test('an authority that accepts and never answers: no answer in time (ETIMEDOUT) after MSB_CONNECT_TIMEOUT_MS', async (t) => {
    const a = await app(t, { MSB_OAUTH_AUTHORITY_HOST: `127.0.0.1:${silent.port}`, MSB_CONNECT_TIMEOUT_MS: '500' });
    // nothing is timed: without a deadline the request would hang, and this cuts it (far later) so that
    // the test fails on the reason (a cut connection, not ETIMEDOUT) instead of hanging the suite
    const breaker = setTimeout(() => void silent.close(), 30_000);
    t.after(() => clearTimeout(breaker));
    const problem = assertProblem(await create(a, ropc('idp-silent')), 'OAUTH_PROVIDER_UNAVAILABLE');
    assert.match(String(problem.detail), /could not be used: no answer in time \(ETIMEDOUT\)/);
    assert.ok(silent.accepted() >= 1, 'the silent authority was reached');
  });

  const tokenAnswer = (padding: string) =>
    JSON.stringify({ token_type: 'Bearer', expires_in: 3600, access_token: 'x.y.z', padding });
  const HOSTILE: [string, HostileHttpAnswer, RegExp][] = [
    // a real token answer padded past the 1 MiB bound: without the bound it would be accepted
    ['200 with a token answer of 1.5 MiB', { status: 200, body: tokenAnswer('p'.repeat(1_572_864)), headers: { 'content-type': 'application/json' } }, /could not be used: identity provider answer too large \(EMSGSIZE\) \[network_error\]/],
    ['200, the connection cut after 20 of its bytes', { status: 200, body: tokenAnswer(''), headers: { 'content-type': 'application/json' }, cutAfter: 20 }, /could not be used: aborted \(ECONNRESET\) \[network_error\]/],
    ['200 with an HTML page (a proxy\'s sign-in page)', { status: 200, body: '<html><body>Please sign in to the proxy</body></html>', headers: { 'content-type': 'text/html' } }, /could not be used: identity provider answered HTTP 200 with a body that is not JSON \(EBADRESPONSE\) \[network_error\]/],
  ];

  test('token endpoint answers that cannot be read: each names its reason, no EWS request follows', async (t) => {
    const a = await app(t);
    t.after(() => void (world.idp.hostile = undefined));
    for (const [label, answer, detail] of HOSTILE) {
      world.idp.hostile = { ...answer, where: 'token' };
      const ews = world.ews.requests.length;
      const tokens = world.idp.tokenRequests.length;
      const problem = assertProblem(await create(a, ropc(`idp-hostile-${HOSTILE.findIndex(([l]) => l === label)}`)), 'OAUTH_PROVIDER_UNAVAILABLE');
      assert.match(String(problem.detail), detail, label);
      assert.deepEqual(world.idp.tokenRequests.slice(tokens).map((r) => [r.grantType, r.error]), [['password', 'hostile']], `${label}: one token request`);
      assert.equal(world.ews.requests.length, ews, `${label}: EWS was not called`);
    }
    // the same app reads a good answer afterwards: a failed answer leaves nothing behind
    world.idp.hostile = undefined;
    const ok = await create(a, ropc('idp-good-again'));
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(world.ews.requests.at(-1)!.principal, USERS.alice.name);
  });

  test('no password, token or secret in any log line or response body', () => {
    assertNoSecrets(logSets.flat(), world.secrets(), 'log');
    assertNoSecrets(bodies, world.secrets(), 'response body');
  });
});

/**
 * For an authority a caller names, the outbound policy resolves the name and checks the address; the
 * connection must then go to that address (a second DNS answer must not swap it, as in DNS rebinding),
 * while TLS still verifies the name. The policy is replaced by a guard that answers a fixed address: the
 * system resolver says 127.0.0.1 for localhost, so a connection that went by a second lookup would succeed.
 */
test('a guarded request connects to the address the guard returned, and TLS still checks the host name', async (t) => {
  const world = await startEwsWorld();
  t.after(() => world.close());
  const port = Number(world.idp.host.split(':')[1]);
  const url = `https://localhost:${port}/${world.idp.tenantId}/v2.0/.well-known/openid-configuration`;
  let answer = '127.0.0.2';
  const asked: [string, number][] = [];
  const client = new HttpsNetworkClient(outboundSecureContext(world.certs.caFile), 5000, async (host, p) => {
    asked.push([host, p]);
    return answer;
  });
  t.after(() => client.close());

  // nothing listens on 127.0.0.2 (the fake listens on 127.0.0.1 only)
  await assert.rejects(client.sendGetRequestAsync(url, {}), (err: NodeJS.ErrnoException & { address?: string }) => {
    assert.equal(err.code, 'ECONNREFUSED');
    assert.equal(err.address, '127.0.0.2');
    return true;
  });
  assert.equal(client.lastFailure?.code, 'ECONNREFUSED');

  answer = '127.0.0.1';
  const res = await client.sendGetRequestAsync<{ issuer?: string }>(url, {});
  assert.equal(res.status, 200);
  assert.equal(res.body.issuer, `${world.idp.origin}/${world.idp.tenantId}/v2.0`);
  assert.deepEqual(asked, [['localhost', port], ['localhost', port]]);
});

/**
 * The first failure of a request is its reason: an answer cut off for being too large is destroyed, and Node then
 * also reports the abort (ECONNRESET) of that answer, which must not replace the reason an operator reads.
 */
test('an answer too large stays the reason after the abort that follows it', async (t) => {
  const world = await startEwsWorld();
  t.after(() => world.close());
  world.idp.hostile = { status: 200, body: `{"pad":"${'p'.repeat(1_572_864)}"}`, headers: { 'content-type': 'application/json' }, where: 'all' };
  const client = new HttpsNetworkClient(outboundSecureContext(world.certs.caFile), 5000);
  t.after(() => client.close());
  const url = `${world.idp.origin}/${world.idp.tenantId}/v2.0/.well-known/openid-configuration`;
  await assert.rejects(client.sendGetRequestAsync(url, {}), { code: 'EMSGSIZE' });
  // let the destroyed answer report what it has to report
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(client.lastFailure?.code, 'EMSGSIZE');
});
