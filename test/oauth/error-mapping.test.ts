import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthError, InteractionRequiredAuthError, ServerError } from '@azure/msal-node';
import { EXCHANGE_VERSIONS, ewsEndpoint, isExchangeOnline } from '../../src/kinds/ews-endpoint.js';
import { toEwsError } from '../../src/connectors/ews/errors.js';
import { oauthCallbackError, oauthNeedsInteraction, toOAuthError } from '../../src/oauth/errors.js';
import { escapeHtml, renderCallbackPage, wantsJson } from '../../src/oauth/callback-page.js';

const ctx = { authorityHost: 'login.example.test', step: 'password' as const, secrets: ['Top-Secret-42'] };

// msal-common 16 constructors: (errorCode, correlationId, errorMessage = the provider's error_description, subError, ...)
test('msal-node errors map to stable codes; MFA points to the authorization code flow', () => {
  const mfa = toOAuthError(new InteractionRequiredAuthError('invalid_grant', 'corr-1', 'AADSTS50079: enroll in MFA. Trace ID: x', 'basic_action'), ctx);
  assert.equal(mfa.code, 'OAUTH_MFA_REQUIRED');
  assert.match(mfa.message, /authorizationCode/);
  const prompt = toOAuthError(new InteractionRequiredAuthError('interaction_required', 'corr-1', 'AADSTS50158: External security challenge not satisfied.'), ctx);
  assert.equal(prompt.code, 'OAUTH_MFA_REQUIRED');
  const generic = toOAuthError(new InteractionRequiredAuthError('interaction_required', 'corr-1', 'AADSTS9999: something else needs a prompt'), ctx);
  assert.equal(generic.code, 'OAUTH_MFA_REQUIRED');
  assert.match(generic.message, /authorizationCode/);
  const cases: [unknown, string, string?][] = [
    [new ServerError('invalid_grant', 'corr-1', 'AADSTS50126: Error validating credentials. Trace ID: abc'), 'MAIL_AUTH_FAILED'],
    [new ServerError('invalid_client', 'corr-1', 'AADSTS7000215: Invalid client secret provided.'), 'OAUTH_CLIENT_REJECTED'],
    [new ServerError('unauthorized_client', 'corr-1', 'AADSTS700016: Application not found.'), 'OAUTH_CLIENT_REJECTED'],
    [new ServerError('invalid_request', 'corr-1', 'AADSTS90002: Tenant not found.'), 'OAUTH_CLIENT_REJECTED'],
    [new ServerError('consent_required', 'corr-1', 'AADSTS65001: The user or administrator has not consented.'), 'OAUTH_ACCESS_DENIED'],
    [new ServerError('temporarily_unavailable', 'corr-1', 'AADSTS90033: A transient error has occurred.'), 'OAUTH_PROVIDER_ERROR'],
    [new AuthError('endpoints_resolution_error', 'corr-1', 'Endpoints cannot be resolved'), 'OAUTH_PROVIDER_UNAVAILABLE'],
    [{ weird: true }, 'OAUTH_PROVIDER_ERROR'],
    ['a string', 'OAUTH_PROVIDER_ERROR'],
  ];
  for (const [err, code] of cases) assert.equal(toOAuthError(err, ctx).code, code, String((err as Error).message ?? err));

  const tls = toOAuthError(new AuthError('endpoints_resolution_error', 'corr-1', ''), { ...ctx, transport: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', message: 'unable to verify the first certificate' } });
  assert.match(tls.message, /MSB_EXTRA_CA_FILE/);
  const refused = toOAuthError(new AuthError('network_error', 'corr-1', ''), { ...ctx, transport: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' } });
  assert.match(refused.message, /connection refused/);
  // the provider's words are kept, without trace ids and without anything secret
  const echoed = toOAuthError(new ServerError('invalid_grant', 'corr-1', 'AADSTS50126: bad password Top-Secret-42\r\nTrace ID: 123'), ctx);
  assert.doesNotMatch(echoed.message, /Top-Secret-42|Trace ID/);
});

test('what counts as "a person must sign in again"', () => {
  assert.equal(oauthNeedsInteraction(new ServerError('invalid_grant', 'corr-1', 'AADSTS700082: The refresh token has expired due to inactivity.')), true);
  assert.equal(oauthNeedsInteraction(new InteractionRequiredAuthError('interaction_required', 'corr-1', 'AADSTS50076: MFA')), true);
  assert.equal(oauthNeedsInteraction(new ServerError('invalid_client', 'corr-1', 'AADSTS7000215: Invalid client secret')), false);
  assert.equal(oauthNeedsInteraction(new AuthError('network_error', 'corr-1', 'down')), false);
  assert.equal(oauthNeedsInteraction(undefined), false);
});

test('errors a provider sends to the redirect endpoint', () => {
  assert.equal(oauthCallbackError('access_denied', 'AADSTS65004: User declined', ctx).code, 'OAUTH_ACCESS_DENIED');
  assert.equal(oauthCallbackError('server_error', 'boom', ctx).code, 'OAUTH_PROVIDER_ERROR');
  assert.match(oauthCallbackError('<script>', undefined, ctx).message, /invalid_error_code/);
});

test('ews-javascript-api rejections (not Errors) map to the same codes as IMAP/POP3', () => {
  const where = { host: 'mail.example.test', port: 443, secrets: ['Top-Secret-42'] };
  const soap = (extra: Record<string, unknown>) => ({ message: '', faultCode: null, HttpStatusCode: undefined, ...extra });
  assert.equal(toEwsError(soap({ message: '401 Unauthorized', HttpStatusCode: 401 }), where).code, 'MAIL_AUTH_FAILED');
  assert.match(toEwsError(soap({ HttpStatusCode: 401 }), { ...where, bearer: true }).message, /EWS permission/);
  assert.equal(toEwsError(soap({ message: 'failed', HttpStatusCode: 500, faultCode: 'a:ErrorInternalServerError' }), where).code, 'MAIL_PROTOCOL_ERROR');
  assert.equal(toEwsError(soap({ faultCode: 'a:ErrorImpersonateUserDenied', HttpStatusCode: 500 }), where).code, 'EWS_ACCESS_DENIED');
  assert.equal(toEwsError(soap({ message: 'x' }), { ...where, ewsCode: 'ErrorNonExistentMailbox' }).code, 'EWS_ACCESS_DENIED');
  assert.equal(toEwsError(soap({ HttpStatusCode: 404 }), where).code, 'MAIL_PROTOCOL_ERROR');
  // the transport error @ewsjs/xhr saw carries Node's code, which the library's rejection drops
  assert.equal(toEwsError(soap({ message: 'connect ECONNREFUSED 127.0.0.1:1' }), { ...where, transport: { code: 'ECONNREFUSED' } }).code, 'MAIL_CONNECTION_REFUSED');
  assert.equal(toEwsError(soap({ message: 'x' }), { ...where, transport: { code: 'ENOTFOUND' } }).code, 'MAIL_HOST_NOT_FOUND');
  assert.equal(toEwsError(soap({ message: 'timeout of 10ms exceeded' }), { ...where, transport: { code: 'ECONNABORTED' } }).code, 'MAIL_TIMEOUT');
  assert.equal(toEwsError(soap({ message: 'x' }), { ...where, transport: { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' } }).code, 'MAIL_TLS_FAILED');
  // without it, the message alone still tells
  assert.equal(toEwsError(soap({ message: 'connect ECONNREFUSED 127.0.0.1:1' }), where).code, 'MAIL_CONNECTION_REFUSED');
  assert.equal(toEwsError(soap({ message: 'unable to verify the first certificate' }), where).code, 'MAIL_TLS_FAILED');
  assert.doesNotMatch(toEwsError(soap({ message: 'echo Top-Secret-42', faultCode: 'a:ErrorX' }), where).message, /Top-Secret-42/);
});

test('the Exchange versions offered are the library\'s enum, and the endpoint rule is the seed\'s', async () => {
  const { ExchangeVersion } = await import('ews-javascript-api');
  const names = Object.keys(ExchangeVersion).filter((k) => Number.isNaN(Number(k)) && k !== 'Exchange_Version_Not_Updated');
  assert.deepEqual([...EXCHANGE_VERSIONS], names);
  assert.equal(ewsEndpoint(undefined, undefined).toString(), 'https://outlook.office365.com/EWS/Exchange.asmx');
  assert.equal(ewsEndpoint(undefined, 'Mail.Contoso.com').toString(), 'https://mail.contoso.com/EWS/Exchange.asmx');
  assert.equal(ewsEndpoint('https://ex.contoso.com:8443/ews/exchange.asmx', 'ignored.test').toString(), 'https://ex.contoso.com:8443/ews/exchange.asmx');
  assert.equal(isExchangeOnline('OUTLOOK.office365.com'), true);
  assert.equal(isExchangeOnline('outlook.office365.us'), true);
  assert.equal(isExchangeOnline('mail.contoso.com'), false);
});

test('the callback page escapes everything and content negotiation prefers what the caller asked for', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const page = renderCallbackPage({ ok: false, title: '<t>', message: '<img src=x onerror=alert(1)>', code: '<c>' });
  assert.doesNotMatch(page, /<img|<t>|<c>/);
  assert.equal(wantsJson('application/json'), true);
  assert.equal(wantsJson('application/problem+json, text/html;q=0.5'), true);
  assert.equal(wantsJson('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'), false);
  assert.equal(wantsJson(undefined), false);
});
