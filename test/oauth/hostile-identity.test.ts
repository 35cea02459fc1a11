import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import type { HostileHttpAnswer } from '../harness/fake-ews.js';
import { startEwsWorld, type EwsWorld } from '../harness/ews-world.js';
import { startGraphWorld, USERS, type GraphWorld } from '../harness/graph-world.js';

/**
 * An identity provider that answers its token endpoint with an error without saying what (HTTP 500 with an
 * empty body, a body that is not JSON) or with "success" but no token. msal-node reads the body, not the
 * status, so such an answer used to pass as a token answer with an empty token, and the resource (Graph,
 * EWS) then got `Authorization: Bearer ` with nothing after it. Each answer must be OAUTH_PROVIDER_ERROR,
 * and no resource may see a request with an empty bearer token.
 */
const ANSWERS: [string, HostileHttpAnswer][] = [
  ['500, empty body', { status: 500, body: '' }],
  ['500, "oops"', { status: 500, body: 'oops' }],
  ['503, empty JSON object', { status: 503, body: '{}', headers: { 'content-type': 'application/json' } }],
  ['200, empty JSON object', { status: 200, body: '{}', headers: { 'content-type': 'application/json' } }],
  ['200, empty access token', { status: 200, body: '{"token_type":"Bearer","access_token":"","expires_in":3600}', headers: { 'content-type': 'application/json' } }],
];

describe('an identity provider that answers without a token', () => {
  let graph: GraphWorld;
  let ews: EwsWorld;
  before(async () => {
    graph = await startGraphWorld();
    ews = await startEwsWorld();
  });
  after(async () => {
    await graph?.close();
    await ews?.close();
  });

  for (const [label, answer] of ANSWERS) {
    test(`${label}: OAUTH_PROVIDER_ERROR, and no Graph or EWS request with an empty bearer token`, async (t) => {
      // one app per case: msal-node holds back a request for 60 s after a 5xx (per app instance)
      graph.idp.hostile = { ...answer, where: 'token' };
      ews.idp.hostile = { ...answer, where: 'token' };
      t.after(() => {
        graph.idp.hostile = undefined;
        ews.idp.hostile = undefined;
      });
      const graphBefore = graph.graph.requests.length;
      const ewsBefore = ews.ews.requests.length;
      const creates: [Record<string, string>, Record<string, unknown>][] = [
        // app-only (client credentials with the server's secret)
        [graph.env, { name: 'o-app', type: 'outlook', mailbox: USERS.shared.name }],
        // delegated, username + password (ROPC)
        [graph.env, { name: 'o-ropc', type: 'outlook', username: USERS.alice.name, password: USERS.alice.password, auth: { flow: 'password' } }],
        [ews.env, { name: 'e-ropc', type: 'ews', url: ews.ews.url, username: USERS.alice.name, password: USERS.alice.password, auth: { type: 'oauth2', flow: 'password' } }],
      ];
      for (const [env, body] of creates) {
        const { app } = await build(t, env);
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
        const problem = assertProblem(res, 'OAUTH_PROVIDER_ERROR');
        assert.doesNotMatch(String(problem.detail), /TypeError|Cannot read|undefined/, 'no internal error text');
      }
      const bearers = [...graph.graph.requests.slice(graphBefore).map((r) => r.token ?? ''), ...ews.ews.requests.slice(ewsBefore).map((r) => r.token ?? '')];
      assert.deepEqual(bearers, [], 'the resource was called without a token from the identity provider');
    });
  }
});
