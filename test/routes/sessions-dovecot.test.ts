import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { defaultUsers, logPatterns, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { freePort } from '../harness/ports.js';
import { startSilentServer } from '../harness/tcp-tools.js';

const USER = 'alice@example.test';
const PASSWORD = defaultUsers[USER]!;

function message(subject: string): string {
  return `From: sender@example.test\r\nTo: ${USER}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}-${Date.now()}@example.test>\r\n\r\nHello\r\n`;
}

describe('IMAP and POP3 sessions against Dovecot, through the HTTP API', () => {
  let dovecot: DovecotServer;
  before(async () => {
    dovecot = await startDovecot();
  });
  after(async () => {
    await dovecot?.close();
  });

  const variants = () =>
    [
      { label: 'IMAP + STARTTLS', type: 'imap', port: dovecot.ports.imap, secure: false, tls: { ca: dovecot.caPem }, mode: 'starttls-required' },
      { label: 'IMAPS', type: 'imap', port: dovecot.ports.imaps, secure: true, tls: { ca: dovecot.caPem }, mode: 'implicit' },
      { label: 'POP3 cleartext', type: 'pop3', port: dovecot.ports.pop3, secure: false, tls: { starttls: 'off' }, mode: 'none' },
      { label: 'POP3S', type: 'pop3', port: dovecot.ports.pop3s, secure: true, tls: { ca: dovecot.caPem }, mode: 'implicit' },
    ] as const;

  test('create, inspect, list, re-create, conflict, close: every protocol and TLS mode', async (t) => {
    const { app } = await build(t);
    await dovecot.deliver(USER, message('first'));
    for (const v of variants()) {
      const name = `s-${v.type}-${v.port}`;
      const body = { name, type: v.type, host: '127.0.0.1', port: v.port, secure: v.secure, username: USER, password: PASSWORD, tls: v.tls };
      const loginsBefore = await dovecot.countLog(v.type === 'imap' ? logPatterns.imapLogin(USER) : logPatterns.pop3Login(USER));

      const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
      assert.equal(created.statusCode, 201, `${v.label}: ${created.body}`);
      assert.equal(created.headers.location, `/v1/sessions/${name}`);
      const session = created.json();
      assert.equal(session.state, 'connected', v.label);
      assert.equal(session.type, v.type);
      assert.equal(session.host, '127.0.0.1');
      assert.equal(session.port, v.port);
      assert.equal(session.username, USER);
      assert.equal(session.tls.mode, v.mode);
      assert.equal(session.tls.verifyCertificate, true);
      assert.equal(session.lastError, null);
      assert.ok(session.mailbox.messages >= 1, `${v.label}: ${JSON.stringify(session.mailbox)}`);
      if (v.type === 'imap') assert.equal(typeof session.mailbox.unseen, 'number');
      else assert.ok(session.mailbox.size > 0);
      assert.equal(JSON.stringify(session).includes(PASSWORD), false);
      const loginsAfter = await dovecot.countLog(v.type === 'imap' ? logPatterns.imapLogin(USER) : logPatterns.pop3Login(USER));
      assert.ok(loginsAfter > loginsBefore, `${v.label}: the server saw a login`);

      const inspected = await app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` });
      assert.equal(inspected.statusCode, 200);
      assert.equal(inspected.json().state, 'connected');

      const again = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...body, host: '127.0.0.1'.toUpperCase() } });
      assert.equal(again.statusCode, 200, `${v.label}: idempotent re-create: ${again.body}`);
      assert.equal(again.json().createdAt, session.createdAt);

      const conflict = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...body, password: 'another-password' } });
      assertProblem(conflict, 'SESSION_CONFLICT');
    }

    const list = await app.inject({ method: 'GET', url: '/v1/sessions' });
    assert.equal(list.json().sessions.length, 4);

    for (const v of variants()) {
      const name = `s-${v.type}-${v.port}`;
      const closed = await app.inject({ method: 'DELETE', url: `/v1/sessions/${name}` });
      assert.equal(closed.statusCode, 204);
      assertProblem(await app.inject({ method: 'GET', url: `/v1/sessions/${name}` }), 'SESSION_NOT_FOUND');
    }
    // every IMAP session ended with LOGOUT, every POP3 use with QUIT
    await dovecot.waitForLog(logPatterns.imapLogout(USER), 2);
    await dovecot.waitForLog(logPatterns.pop3Logout(USER), 2);
  });

  test('host names are case-insensitive and normalised', async (t) => {
    const { app } = await build(t);
    const res = await app.inject({
      method: 'POST',
      url: '/v1/sessions',
      payload: { name: 'case', type: 'imap', host: 'LocalHost', port: dovecot.ports.imaps, username: USER, password: PASSWORD, tls: { ca: dovecot.caPem } },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().host, 'localhost');
  });

  test('new mail becomes visible: IMAP on refresh, POP3 on the next use', async (t) => {
    const { app } = await build(t);
    const imap = { name: 'watch-imap', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER, password: PASSWORD, tls: { ca: dovecot.caPem } };
    const pop3 = { ...imap, name: 'watch-pop3', type: 'pop3', port: dovecot.ports.pop3s };
    const a = (await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap })).json();
    const b = (await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop3 })).json();
    await dovecot.deliver(USER, message('later'));
    const a2 = (await app.inject({ method: 'GET', url: '/v1/sessions/watch-imap?refresh=true' })).json();
    const b2 = (await app.inject({ method: 'GET', url: '/v1/sessions/watch-pop3?refresh=true' })).json();
    assert.equal(a2.mailbox.messages, a.mailbox.messages + 1);
    assert.equal(a2.mailbox.unseen, a.mailbox.unseen + 1);
    assert.equal(b2.mailbox.messages, b.mailbox.messages + 1);
  });

  test('wrong password: MAIL_AUTH_FAILED, nothing kept, for both protocols', async (t) => {
    const { app } = await build(t);
    for (const [type, port] of [['imap', dovecot.ports.imaps], ['pop3', dovecot.ports.pop3s]] as const) {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/sessions',
        payload: { name: `bad-${type}`, type, host: '127.0.0.1', port, username: USER, password: 'wrong-Password-9', tls: { ca: dovecot.caPem } },
      });
      const problem = assertProblem(res, 'MAIL_AUTH_FAILED');
      assert.doesNotMatch(String(problem.detail), /wrong-Password-9/);
      assertProblem(await app.inject({ method: 'GET', url: `/v1/sessions/bad-${type}` }), 'SESSION_NOT_FOUND');
    }
  });

  test('untrusted certificate: MAIL_TLS_FAILED with verification on; accepted with the explicit opt-out', async (t) => {
    const { app } = await build(t);
    const body = { name: 'untrusted', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER, password: PASSWORD };
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body }), 'MAIL_TLS_FAILED');
    const pop = { ...body, type: 'pop3', port: dovecot.ports.pop3s };
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop }), 'MAIL_TLS_FAILED');
    const optedOut = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...body, tls: { verifyCertificate: false } } });
    assert.equal(optedOut.statusCode, 201, optedOut.body);
    assert.equal(optedOut.json().tls.verifyCertificate, false);
  });

  test('mismatched certificate name: MAIL_TLS_FAILED', async (t) => {
    const { app } = await build(t);
    const body = {
      name: 'mismatch', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER, password: PASSWORD,
      tls: { ca: dovecot.caPem, servername: 'mail.other.test' },
    };
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body }), 'MAIL_TLS_FAILED');
  });

  test('implicit TLS against a plain port: MAIL_TLS_FAILED', async (t) => {
    const { app } = await build(t);
    const body = { name: 'tls-to-plain', type: 'imap', host: '127.0.0.1', port: dovecot.ports.imap, secure: true, username: USER, password: PASSWORD, timeouts: { connectMs: 3000 } };
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body }), 'MAIL_TLS_FAILED');
  });

  test('refused port, unknown host and a silent server get distinct codes', async (t) => {
    const { app } = await build(t);
    const base = { type: 'imap', username: USER, password: PASSWORD, timeouts: { connectMs: 1000 } };
    const closedPort = await freePort();
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, name: 'refused', host: '127.0.0.1', port: closedPort } }), 'MAIL_CONNECTION_REFUSED');
    assertProblem(
      await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, name: 'nxdomain', host: 'no-such-host.invalid' } }),
      'MAIL_HOST_NOT_FOUND',
    );
    const silent = await startSilentServer();
    t.after(() => silent.close());
    for (const type of ['imap', 'pop3'] as const) {
      const started = Date.now();
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...base, type, secure: type === 'imap', tls: type === 'pop3' ? { starttls: 'off' } : {}, name: `silent-${type}`, host: '127.0.0.1', port: silent.port } });
      assertProblem(res, 'MAIL_TIMEOUT');
      // bounded by the session's connect timeout (1 s), not by a library default (imapflow greets within 16 s,
      // node-pop3 waits for ever): half of imapflow's default leaves room for a loaded machine
      assert.ok(Date.now() - started < 8_000, `${type} timeout took ${Date.now() - started} ms`);
      assert.match(res.json().detail, /1000 ms|GREETING_TIMEOUT|timeout/i);
    }
  });
});
