import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { isAppError } from '../../src/errors.js';
import { ewsKind } from '../../src/kinds/ews.js';
import type { KindServices } from '../../src/kinds/kind.js';
import { mailServerKind } from '../../src/kinds/mail-server.js';
import { outlookKind } from '../../src/kinds/outlook.js';

// One rule for the server's Microsoft app registration, whatever the kind: prepare() alone, no connection
const services = {} as KindServices;
const owner = { owner: 'bot-a' };
const config = loadConfig({
  MSB_AUTH: 'none',
  MSB_MICROSOFT_CLIENT_ID: 'server-app',
  MSB_MICROSOFT_TENANT_ID: 'contoso.test',
  MSB_MICROSOFT_CLIENT_SECRET: 'Server-Secret-1b2c',
  MSB_MICROSOFT_TRUSTED_HOSTS: 'outlook.office365.com,mail.contoso.test:8443',
});

const bodies = {
  ews: (auth: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    ewsKind.prepare({ name: 's', type: 'ews', username: 'ap@contoso.test', ...extra, auth: { type: 'oauth2', flow: 'clientCredentials', ...auth } }, config, services, owner),
  outlook: (auth: Record<string, unknown>) => outlookKind.prepare({ name: 's', type: 'outlook', mailbox: 'ap@contoso.test', auth: { flow: 'clientCredentials', ...auth } }, config, services, owner),
  imap: (auth: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
    mailServerKind.prepare({ name: 's', type: 'imap', host: 'outlook.office365.com', username: 'ap@contoso.test', ...extra, auth: { type: 'oauth2', flow: 'clientCredentials', ...auth } }, config, services, owner),
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isAppError(err) ? err.code : 'not an AppError';
  }
}

const source = (prepared: { view: Record<string, unknown> }) => (prepared.view.auth as { clientSecretSource: string }).clientSecretSource;

test('every Microsoft kind uses the one app registration of MSB_MICROSOFT_*', () => {
  for (const [kind, prepare] of Object.entries(bodies)) {
    const prepared = prepare({});
    assert.equal(source(prepared), 'server', kind);
    assert.equal((prepared.view.auth as { clientId: string }).clientId, 'server-app', kind);
  }
});

test('an authority host MSAL cannot use is a 400 for every kind, not a 502 later', () => {
  for (const [kind, prepare] of Object.entries(bodies)) {
    // the pattern lets these through; the URL parser does not give them back as they are
    for (const authorityHost of ['login.example.test:443', 'login.example.test:99999']) {
      assert.equal(codeOf(() => prepare({ authorityHost, clientSecret: 'Own-1' })), 'INVALID_SETTINGS', `${kind} ${authorityHost}`);
    }
    assert.equal(codeOf(() => prepare({ authorityHost: 'login.example.test:8443', clientSecret: 'Own-1' })), undefined, kind);
  }
});

test('MSB_MICROSOFT_TRUSTED_HOSTS: a host alone trusts every port, host:port that port only (EWS and IMAP alike)', () => {
  assert.equal(source(bodies.ews({}, { url: 'https://outlook.office365.com:444/EWS/Exchange.asmx' })), 'server');
  assert.equal(source(bodies.imap({}, { port: 1993 })), 'server');
  assert.equal(source(bodies.ews({}, { url: 'https://mail.contoso.test:8443/EWS/Exchange.asmx' })), 'server');
  assert.equal(source(bodies.imap({}, { host: 'mail.contoso.test', port: 8443 })), 'server');
  assert.equal(codeOf(() => bodies.ews({}, { url: 'https://mail.contoso.test/EWS/Exchange.asmx' })), 'OAUTH_CLIENT_SECRET_REQUIRED');
  assert.equal(codeOf(() => bodies.imap({}, { host: 'mail.contoso.test', port: 993 })), 'OAUTH_CLIENT_SECRET_REQUIRED');
});
