import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build } from './helper.js';
import { startDovecot, type DovecotServer } from './harness/dovecot.js';

const USER = 'leak@example.test';
const PASSWORD = 'Leak-Canary-7f3a9c';
const WRONG = 'Wrong-Canary-52e1b8';

/** Every form a password could take on the wire or in a trace: plain, base64 (SASL PLAIN, XOAUTH2), quoted. */
function forms(secret: string): string[] {
  return [
    secret,
    Buffer.from(secret).toString('base64'),
    Buffer.from(`\u0000${USER}\u0000${secret}`).toString('base64'),
    Buffer.from(`${USER}\u0000${USER}\u0000${secret}`).toString('base64'),
    JSON.stringify(secret).slice(1, -1),
  ];
}

describe('logs never carry a password', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot({ users: { [USER]: PASSWORD } });
  });
  after(async () => {
    await dovecot?.close();
  });

  test('a run at trace level (service and mail libraries), with successes and failures', async (t) => {
    const { app, logs } = await build(t, { LOG_LEVEL: 'trace', MSB_MAIL_LOG_LEVEL: 'trace' });
    const bodies = [
      { type: 'imap', port: dovecot.ports.imaps, secure: true, tls: { ca: dovecot.caPem } },
      { type: 'imap', port: dovecot.ports.imap, secure: false, tls: { ca: dovecot.caPem } },
      { type: 'imap', port: dovecot.ports.imap, secure: false, tls: { starttls: 'off' } },
      { type: 'pop3', port: dovecot.ports.pop3s, secure: true, tls: { ca: dovecot.caPem } },
      { type: 'pop3', port: dovecot.ports.pop3, secure: false, tls: { starttls: 'off' } },
    ];
    let i = 0;
    for (const b of bodies) {
      for (const password of [PASSWORD, WRONG]) {
        const name = `leak-${i++}`;
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name, host: '127.0.0.1', username: USER, password, ...b } });
        assert.equal(res.statusCode, password === PASSWORD ? 201 : 422, res.body);
        for (const form of [...forms(PASSWORD), ...forms(WRONG)]) assert.equal(res.body.includes(form), false, 'a response carries a password');
        await app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` });
      }
    }
    // a body logged by mistake, e.g. on a validation error, must not leak either
    await app.inject({ method: 'POST', url: '/v1/sessions', payload: { name: 'x', type: 'imap', host: 'h', username: 'u', password: PASSWORD, bogus: 1 } });
    await app.inject({ method: 'GET', url: '/v1/sessions', headers: { authorization: `Bearer ${PASSWORD}` } });
    await app.close();

    assert.ok(logs.length > 50, `a trace-level run logs plenty (${logs.length} lines)`);
    assert.ok(logs.some((l) => /"lib":"imap"/.test(l)), 'imapflow traces were captured');
    const leaks = logs.filter((line) => [...forms(PASSWORD), ...forms(WRONG)].some((f) => line.includes(f)));
    assert.deepEqual(leaks, [], 'log lines carrying a password');
  });
});
