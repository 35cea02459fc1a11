import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { isAppError } from '../../src/errors.js';
import { ewsKind } from '../../src/kinds/ews.js';
import type { KindServices } from '../../src/kinds/kind.js';

// prepare() alone: no connection is made, so Exchange Online endpoints can be checked without the internet
const services = {} as KindServices;
const owner = { owner: 'bot-a' };
const config = loadConfig({ MSB_AUTH: 'none', MSB_EWS_CLIENT_ID: 'server-app', MSB_EWS_TENANT_ID: 'contoso.test', MSB_EWS_CLIENT_SECRET: 'Server-Secret-1b2c' });
const base = { name: 's', type: 'ews', username: 'ap@contoso.test' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isAppError(err) ? err.code : 'not an AppError';
  }
}

test('Exchange Online endpoints carry the dated retirement warning; Basic there a second one', () => {
  const office365 = ewsKind.prepare({ ...base, password: 'pw-123', auth: { type: 'basic' } }, config, services, owner);
  assert.equal(office365.view.url, 'https://outlook.office365.com/EWS/Exchange.asmx');
  const warnings = office365.view.warnings as string[];
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /blocked by default since 2026-10-01.*shut down for good on 2027-04-01/);
  assert.match(warnings[1]!, /Basic authentication off/);
  const onPrem = ewsKind.prepare({ ...base, domain: 'Mail.Contoso.test', password: 'pw-123', auth: { type: 'basic' } }, config, services, owner);
  assert.equal(onPrem.view.url, 'https://mail.contoso.test/EWS/Exchange.asmx');
  assert.deepEqual(onPrem.view.warnings, []);
  const gcc = ewsKind.prepare({ ...base, url: 'https://outlook.office365.us/EWS/Exchange.asmx', auth: { type: 'oauth2', clientId: 'public-app' } }, config, services, owner);
  assert.equal((gcc.view.warnings as string[]).length, 1);
});

test('the server secret only for its client ID, authority and trusted EWS hosts', () => {
  const cc = (extra: Record<string, unknown>, auth: Record<string, unknown> = {}) =>
    ewsKind.prepare({ ...base, ...extra, auth: { type: 'oauth2', flow: 'clientCredentials', ...auth } }, config, services, owner);
  assert.equal((cc({}).view.auth as { clientSecretSource: string }).clientSecretSource, 'server');
  assert.equal(codeOf(() => cc({ domain: 'mail.contoso.test' })), 'OAUTH_CLIENT_SECRET_REQUIRED');
  assert.equal(codeOf(() => cc({}, { authorityHost: 'login.evil.test' })), 'OAUTH_CLIENT_SECRET_REQUIRED');
  assert.equal(codeOf(() => cc({}, { clientId: 'other-app' })), 'OAUTH_CLIENT_SECRET_REQUIRED');
  assert.equal((cc({ domain: 'mail.contoso.test' }, { clientSecret: 'Own-Secret-9' }).view.auth as { clientSecretSource: string }).clientSecretSource, 'request');
  // a delegated flow without the server secret on a caller-named host: the caller brings its own app or secret
  assert.equal(codeOf(() => ewsKind.prepare({ ...base, domain: 'mail.contoso.test', auth: { type: 'oauth2' } }, config, services, owner)), 'OAUTH_CLIENT_SECRET_REQUIRED');
  const own = ewsKind.prepare({ ...base, domain: 'mail.contoso.test', auth: { type: 'oauth2', clientId: 'public-app' } }, config, services, owner);
  assert.equal((own.view.auth as { clientSecretSource: string }).clientSecretSource, 'none');
});

test('views carry no secret; fingerprints change with every secret', () => {
  const body = { ...base, password: 'Pw-Canary-77', auth: { type: 'oauth2', flow: 'password', clientSecret: 'Cs-Canary-88' } };
  const a = ewsKind.prepare(body, config, services, owner);
  assert.doesNotMatch(JSON.stringify(a.view), /Canary|Server-Secret/);
  assert.doesNotMatch(JSON.stringify(a.logBindings), /Canary|Server-Secret/);
  const b = ewsKind.prepare({ ...body, password: 'Pw-Canary-78' }, config, services, owner);
  const c = ewsKind.prepare({ ...body, auth: { ...body.auth, clientSecret: 'Cs-Canary-89' } }, config, services, owner);
  assert.notEqual(a.fingerprint, b.fingerprint);
  assert.notEqual(a.fingerprint, c.fingerprint);
  assert.equal(a.fingerprint, ewsKind.prepare(body, config, services, owner).fingerprint);
});

test('the declared capabilities hold against the connector: EWS sessions read, change, send, tag and watch', () => {
  const prepared = ewsKind.prepare({ ...base, password: 'pw-123', auth: { type: 'basic' } }, config, services, owner);
  const noop = () => undefined;
  const logger = { debug: noop, info: noop, warn: noop, error: noop, trace: noop, child: () => logger } as never;
  const connector = prepared.createConnector({ logger, outbound: {} as never, onDrop: noop, resume: async () => undefined });
  const declared = ewsKind.capabilities.ews ?? [];
  assert.deepEqual([...declared].sort(), ['deleter', 'flagger', 'mover', 'reader', 'sender', 'tagger', 'watcher']);
  for (const capability of declared) assert.ok(connector[capability], `declares ${capability}`);
  assert.equal(typeof connector.watcher?.poll, 'function', 'EWS must ask for new mail: the session polls it');
});
