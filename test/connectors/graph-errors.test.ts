import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toGraphError } from '../../src/connectors/graph/errors.js';
import { toTokenEndpointError } from '../../src/oauth/errors.js';

const where = { host: 'graph.microsoft.com', port: 443, mailbox: 'shared@contoso.test' };

test('Graph statuses map to stable codes; retryable ones carry retryAfterSeconds', () => {
  const cases: [number, string][] = [
    [401, 'MAIL_AUTH_FAILED'],
    [403, 'GRAPH_ACCESS_DENIED'],
    [404, 'GRAPH_MAILBOX_NOT_FOUND'],
    [429, 'GRAPH_THROTTLED'],
    [500, 'GRAPH_UNAVAILABLE'],
    [503, 'GRAPH_UNAVAILABLE'],
    [400, 'MAIL_PROTOCOL_ERROR'],
  ];
  for (const [status, code] of cases) assert.equal(toGraphError({ ...where, status }).code, code, String(status));
  const throttled = toGraphError({ ...where, status: 429, retryAfterSeconds: 2.2, attempts: 4 });
  assert.deepEqual(throttled.extra, { retryAfterSeconds: 3 });
  assert.match(throttled.message, /after 4 attempts/);
});

test('transport failures map like the other protocols, and Graph text is scrubbed of secrets', () => {
  assert.equal(toGraphError({ ...where, transport: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' } }).code, 'MAIL_CONNECTION_REFUSED');
  assert.equal(toGraphError({ ...where, transport: { code: 'ETIMEDOUT', message: 'no answer' } }).code, 'MAIL_TIMEOUT');
  assert.equal(toGraphError({ ...where, transport: { code: 'SELF_SIGNED_CERT_IN_CHAIN', message: 'x' } }).code, 'MAIL_TLS_FAILED');
  assert.equal(toGraphError({ ...where, transport: { code: 'EWHATEVER', message: 'x' } }).code, 'MAIL_NETWORK_ERROR');
  const echoed = toGraphError({ ...where, status: 403, graphCode: 'ErrorAccessDenied', graphMessage: 'token eyJsecret-token-value refused', secrets: ['eyJsecret-token-value'] });
  assert.doesNotMatch(echoed.message, /eyJsecret-token-value/);
});

test('token endpoint answers map to the OAuth2 codes; a refused refresh token is MAIL_AUTH_FAILED', () => {
  const ctx = { endpoint: 'idp.example.test', grant: 'refresh_token' as const };
  assert.equal(toTokenEndpointError({ ...ctx, status: 401, error: 'invalid_client' }).code, 'OAUTH_CLIENT_REJECTED');
  assert.equal(toTokenEndpointError({ ...ctx, status: 400, error: 'invalid_grant' }).code, 'MAIL_AUTH_FAILED');
  assert.equal(toTokenEndpointError({ ...ctx, status: 400, error: 'invalid_scope' }).code, 'OAUTH_ACCESS_DENIED');
  assert.equal(toTokenEndpointError({ ...ctx, status: 500 }).code, 'OAUTH_PROVIDER_ERROR');
  assert.equal(toTokenEndpointError({ ...ctx, transport: { code: 'ECONNREFUSED', message: 'refused' } }).code, 'OAUTH_PROVIDER_UNAVAILABLE');
  const scrubbed = toTokenEndpointError({ ...ctx, status: 400, error: 'invalid_grant', description: 'refresh token rt-secret-123 expired', secrets: ['rt-secret-123'] });
  assert.doesNotMatch(scrubbed.message, /rt-secret-123/);
});
