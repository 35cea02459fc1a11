import assert from 'node:assert/strict';
import { test } from 'node:test';
import { toImapError } from '../../src/connectors/imap/errors.js';
import { toPop3Error } from '../../src/connectors/pop3/errors.js';
import { scrub } from '../../src/net/errors.js';

const ctx = { host: 'mail.example.test', port: 993, secrets: ['hunter2-secret'] };

test('library errors map to stable codes', () => {
  const cases: [unknown, string][] = [
    [{ authenticationFailed: true, serverResponseCode: 'AUTHENTICATIONFAILED', message: 'Command failed' }, 'MAIL_AUTH_FAILED'],
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 'MAIL_CONNECTION_REFUSED'],
    [Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), 'MAIL_HOST_NOT_FOUND'],
    [Object.assign(new Error('Greeting never received'), { code: 'GREETING_TIMEOUT' }), 'MAIL_TIMEOUT'],
    [Object.assign(new Error('timeout'), { eventName: 'timeout' }), 'MAIL_TIMEOUT'],
    [Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), 'MAIL_TLS_FAILED'],
    [Object.assign(new Error('wrong version number'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }), 'MAIL_TLS_FAILED'],
    [Object.assign(new Error('Server does not support STARTTLS'), { tlsFailed: true }), 'MAIL_STARTTLS_UNAVAILABLE'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'MAIL_NETWORK_ERROR'],
    [{ weird: true }, 'MAIL_PROTOCOL_ERROR'],
    ['a string', 'MAIL_PROTOCOL_ERROR'],
  ];
  for (const [input, code] of cases) {
    assert.equal(toImapError(input, ctx).code, code, JSON.stringify(input));
    // the network codes are the same whatever the protocol
    if (code !== 'MAIL_AUTH_FAILED') assert.equal(toPop3Error(input, ctx).code, code, JSON.stringify(input));
  }
  const popAuth = Object.assign(new Error('[AUTH] Authentication failed.'), { eventName: 'error', command: 'PASS ***' });
  assert.equal(toPop3Error(popAuth, ctx).code, 'MAIL_AUTH_FAILED');
  assert.match(toPop3Error(popAuth, ctx).message, /^POP3 /);
});

test('messages never carry a secret, even when a server echoes it', () => {
  const err = toImapError(new Error('NO bad password hunter2-secret for user'), ctx);
  assert.doesNotMatch(err.message, /hunter2-secret/);
  assert.match(err.message, /mail\.example\.test:993/);
});

test('scrub removes control characters and bounds the length', () => {
  assert.equal(scrub('a\r\nb'), 'a b');
  assert.ok(scrub('x'.repeat(1000)).length < 320);
});
