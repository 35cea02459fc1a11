import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { logPatterns, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { startTcpProxy } from '../harness/tcp-tools.js';

/** Fast lifecycle settings so that drops, reconnects and expiry happen within a test. */
const FAST = {
  MSB_KEEPALIVE_INTERVAL_MS: '300',
  MSB_CHECK_INTERVAL_MS: '300',
  MSB_COMMAND_TIMEOUT_MS: '1000',
  MSB_CONNECT_TIMEOUT_MS: '2000',
  MSB_RECONNECT_BASE_MS: '100',
  MSB_RECONNECT_MAX_MS: '400',
};

/** Polls inspect until `predicate` holds; fails with the last state seen. */
async function waitForSession(app: App, name: string, predicate: (s: Record<string, any>) => boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/${name}` });
    last = res.statusCode === 200 ? res.json() : res.statusCode;
    if (res.statusCode === 200 && predicate(res.json())) return res.json();
    await sleep(50);
  }
  assert.fail(`session ${name} did not reach the expected state in ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
}

describe('sessions that stay alive (Dovecot)', () => {
  let dovecot: DovecotServer;
  // dedicated users per test, so counts of logins and failures in the shared log are exact
  const users: Record<string, string> = {
    'restart@example.test': 'restart-Pw-1',
    'cut@example.test': 'cut-Pw-1',
    'changed@example.test': 'changed-Pw-1',
    'parallel@example.test': 'parallel-Pw-1',
    'expiry@example.test': 'expiry-Pw-1',
    'misc@example.test': 'misc-Pw-1',
  };
  before(async () => {
    dovecot = await startDovecot({ users });
  });
  after(async () => {
    await dovecot?.close();
  });
  const imap = (name: string, user: string, port = dovecot.ports.imaps) => ({
    name, type: 'imap', host: '127.0.0.1', port, username: user, password: users[user], tls: { ca: dovecot.caPem },
  });
  const pop3 = (name: string, user: string) => ({ ...imap(name, user, dovecot.ports.pop3s), type: 'pop3' });

  test('a mail server restart: sessions go to reconnecting and come back by themselves (IMAP and POP3)', async (t) => {
    const { app } = await build(t, FAST);
    const user = 'restart@example.test';
    for (const body of [imap('r-imap', user), pop3('r-pop3', user)]) {
      assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body })).statusCode, 201);
    }
    await dovecot.stop();
    try {
      for (const name of ['r-imap', 'r-pop3']) {
        const s = await waitForSession(app, name, (v) => v.state === 'reconnecting');
        assert.ok(s.lastError, 'the last error is shown');
        assert.equal(typeof s.reconnect.attempt, 'number');
        // a use of the session answers with a retryable error, not a hang
        const res = await app.inject({ method: 'GET', url: `/v1/sessions/${name}?refresh=true` });
        assertProblem(res, 'SESSION_RECONNECTING');
        assert.match(String(res.headers['retry-after']), /^\d+$/);
      }
      await waitForSession(app, 'r-imap', (v) => v.reconnect?.attempt >= 1);
    } finally {
      await dovecot.start();
    }
    for (const name of ['r-imap', 'r-pop3']) {
      const s = await waitForSession(app, name, (v) => v.state === 'connected');
      assert.equal(s.reconnect, null);
    }
    const list = (await app.inject({ method: 'GET', url: '/v1/sessions' })).json();
    assert.equal(list.sessions.length, 2, 'no session lost');
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /msb_reconnects_total\{type="imap"\} [1-9]/);
    assert.match(metrics, /msb_connects_total\{type="imap",reconnect="true"\} [1-9]/);
  });

  test('a connection that goes dark (half-open TCP) is noticed within keepalive + command timeout', async (t) => {
    const { app } = await build(t, FAST);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.ports.imap });
    t.after(() => proxy.close());
    const body = { ...imap('dark', 'cut@example.test', proxy.port), tls: { starttls: 'off' }, secure: false };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body })).statusCode, 201);
    proxy.blackhole(true);
    const started = Date.now();
    // bound: keepalive period (+10% jitter) + command timeout; 4x leaves room for a loaded machine
    const bound = (300 * 1.1 + 1000) * 4;
    const s = await waitForSession(app, 'dark', (v) => v.state === 'reconnecting', bound);
    assert.equal(s.lastError.code, 'MAIL_TIMEOUT');
    t.diagnostic(`dark connection noticed after ${Date.now() - started} ms (bound ${bound} ms)`);
    proxy.blackhole(false);
    await waitForSession(app, 'dark', (v) => v.state === 'connected');
  });

  test('credentials changed while disconnected: failed after one attempt, without hammering', async (t) => {
    const { app } = await build(t, FAST);
    const user = 'changed@example.test';
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.ports.imap });
    t.after(() => proxy.close());
    const body = { ...imap('changed', user, proxy.port), tls: { starttls: 'off' }, secure: false };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body })).statusCode, 201);
    const failuresBefore = await dovecot.countLog(logPatterns.authFailed(user));
    await dovecot.setPassword(user, 'a-new-Password-2');
    t.after(() => dovecot.setPassword(user, users[user]!));
    proxy.resetAll();
    const s = await waitForSession(app, 'changed', (v) => v.state === 'failed');
    assert.equal(s.lastError.code, 'MAIL_AUTH_FAILED');
    await sleep(1500); // several backoff periods: nothing more may be tried
    await dovecot.waitForLog(logPatterns.authFailed(user), failuresBefore + 1);
    assert.equal(await dovecot.countLog(logPatterns.authFailed(user)), failuresBefore + 1, 'exactly one failed login');
    const res = await app.inject({ method: 'GET', url: '/v1/sessions/changed?refresh=true' });
    assertProblem(res, 'SESSION_NOT_READY');
  });

  test('50 parallel creates of one name: one server-side login, one 201', async (t) => {
    const { app } = await build(t);
    const user = 'parallel@example.test';
    const before = await dovecot.countLog(logPatterns.imapLogin(user));
    const responses = await Promise.all(
      // watch: [] as the session's own connection is counted (a watching session logs in once more, for IDLE)
      Array.from({ length: 50 }, () => app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('same', user), watch: [] } })),
    );
    const codes = responses.map((r) => r.statusCode);
    assert.equal(codes.filter((c) => c === 201).length, 1, codes.join(','));
    assert.equal(codes.filter((c) => c === 200).length, 49, codes.join(','));
    await sleep(200);
    assert.equal(await dovecot.countLog(logPatterns.imapLogin(user)), before + 1);
  });

  test('idle sessions expire with a LOGOUT; using a session renews it', async (t) => {
    const { app } = await build(t);
    const user = 'expiry@example.test';
    const logoutsBefore = await dovecot.countLog(logPatterns.imapLogout(user));
    const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('short', user), idleTimeoutMs: 1200 } });
    assert.equal(created.statusCode, 201, created.body);
    const first = created.json();
    assert.equal(first.idleTimeoutMs, 1200);
    await sleep(600);
    const touched = (await app.inject({ method: 'GET', url: '/v1/sessions/short' })).json();
    assert.ok(Date.parse(touched.expiresAt) > Date.parse(first.expiresAt), 'inspect renewed the expiry');
    await sleep(800); // past the first expiry, before the renewed one
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/short' })).statusCode, 200);
    // listing does not count as a use, so it can watch the expiry happen
    const count = async () => (await app.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions.length;
    const deadline = Date.now() + 10_000;
    while ((await count()) > 0 && Date.now() < deadline) await sleep(100);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions.length, 0, 'the session expired');
    await dovecot.waitForLog(logPatterns.imapLogout(user), logoutsBefore + 1);
    const never = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('forever', user), idleTimeoutMs: 0 } });
    assert.equal(never.json().expiresAt, null);
  });

  test('pool limits: total and per host, with Retry-After', async (t) => {
    const { app } = await build(t, { MSB_MAX_SESSIONS: '3', MSB_MAX_SESSIONS_PER_HOST: '2' });
    const user = 'misc@example.test';
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('l1', user) })).statusCode, 201);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('l2', user) })).statusCode, 201);
    const perHost = await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('l3', user) });
    assertProblem(perHost, 'SESSION_LIMIT_REACHED');
    assert.ok(perHost.headers['retry-after']);
    const other = { ...imap('l4', user), host: 'localhost' };
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: other })).statusCode, 201);
    const full = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...other, name: 'l5' } });
    assertProblem(full, 'SESSION_LIMIT_REACHED');
    assert.match(String(full.json().detail), /maximum of 3/);
  });

  test('closing a session while it is connecting is clean: no connection left', async (t) => {
    // a connect timeout far beyond the test: the create must end because of the close, not the timeout (and a
    // loaded machine must still see the session in connecting before anything times out)
    const { app } = await build(t, { MSB_CONNECT_TIMEOUT_MS: '120000' });
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: dovecot.ports.imap });
    t.after(() => proxy.close());
    proxy.blackhole(true);
    const body = { ...imap('slow', 'misc@example.test', proxy.port), tls: { starttls: 'off' }, secure: false };
    // light-my-request sends an inject when it is awaited: Promise.resolve sends it now
    const creating = Promise.resolve(app.inject({ method: 'POST', url: '/v1/sessions', payload: body }));
    await waitForSession(app, 'slow', (v) => v.state === 'connecting');
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/sessions/slow' })).statusCode, 204);
    const created = await creating;
    assertProblem(created, 'SESSION_NOT_FOUND'); // closed while connecting: the create's answer says it is gone
    assertProblem(await app.inject({ method: 'GET', url: '/v1/sessions/slow' }), 'SESSION_NOT_FOUND');
    const deadline = Date.now() + 5000;
    while (proxy.connections() > 0 && Date.now() < deadline) await sleep(50);
    assert.equal(proxy.connections(), 0, 'the half-made connection was torn down');
  });

  test('concurrent operations on one session are serialized', async (t) => {
    const { app } = await build(t);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('busy', 'misc@example.test') })).statusCode, 201);
    const results = await Promise.all(Array.from({ length: 20 }, () => app.inject({ method: 'GET', url: '/v1/sessions/busy?refresh=true' })));
    for (const r of results) {
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json().state, 'connected');
      assert.equal(r.json().lastError, null);
    }
  });

  test('metrics show sessions by type and state', async (t) => {
    const { app } = await build(t);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('m1', 'misc@example.test') })).statusCode, 201);
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain/);
    assert.match(res.body, /msb_sessions\{type="imap",state="connected"\} 1/);
    assert.match(res.body, /msb_connect_duration_seconds_count\{type="imap",reconnect="false"\} 1/);
    const bad = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...imap('m2', 'misc@example.test'), password: 'nope-nope' } });
    assertProblem(bad, 'MAIL_AUTH_FAILED');
    const after = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(after, /msb_failures_total\{type="imap",code="MAIL_AUTH_FAILED"\} 1/);
  });
});
