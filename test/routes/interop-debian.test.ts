import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { courierLogPatterns, startCourier, type CourierServer } from '../harness/courier.js';
import { cyrusLogPatterns, startCyrus, type CyrusServer } from '../harness/cyrus.js';

/**
 * Interop with the mail servers users run besides Dovecot and GreenMail: Cyrus IMAP 3.6 and Courier
 * IMAP/POP3, from Debian's packages (unpacked by .ci/install-test-deps, run by test/harness/cyrus.ts and
 * courier.ts). The same scenarios for both: create and counts, a wrong password, a server restart, and
 * POP3 LOGIN-DELAY (Cyrus enforces it, Courier only advertises it); and Cyrus refusing cleartext logins.
 */
type Server = (CyrusServer | CourierServer) & { deliver(user: string, rfc822: string): Promise<void> };

interface Patterns {
  imapLogin(user: string): RegExp;
  pop3Login(user: string): RegExp;
  badLogin(user: string): RegExp;
}

/** Lifecycle settings fast enough for a restart within a test. */
const FAST = {
  MSB_KEEPALIVE_INTERVAL_MS: '300',
  MSB_CHECK_INTERVAL_MS: '300',
  MSB_COMMAND_TIMEOUT_MS: '3000',
  MSB_CONNECT_TIMEOUT_MS: '8000',
  MSB_RECONNECT_BASE_MS: '100',
  MSB_RECONNECT_MAX_MS: '500',
};

const mail = (subject: string) => `From: sender@example.test\r\nTo: someone@example.test\r\nSubject: ${subject}\r\n\r\nHello.\r\n`;

async function waitFor(app: App, name: string, predicate: (s: Record<string, any>) => boolean, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/${name}` });
    last = res.statusCode === 200 ? res.json() : res.body;
    if (res.statusCode === 200 && predicate(res.json())) return res.json();
    await sleep(50);
  }
  assert.fail(`session ${name} never reached the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

const USERS: Record<string, string> = {
  'counts@example.test': 'Counts-Pw-1',
  'wrong@example.test': 'Wrong-Pw-1',
  'restart@example.test': 'Restart-Pw-1',
  'delay@example.test': 'Delay-Pw-1',
  'delay2@example.test': 'Delay2-Pw-1',
};

function basics(label: string, start: () => Promise<Server>, patterns: Patterns) {
  describe(`${label}: create, counts, wrong password, restart`, () => {
    let server: Server;
    before(async () => {
      server = await start();
    });
    after(() => server?.close());
    const imap = (name: string, user: string) => ({
      name, type: 'imap', host: '127.0.0.1', port: server.ports.imaps, secure: true, username: user, password: USERS[user], tls: { ca: server.caPem },
    });
    const pop3 = (name: string, user: string) => ({ ...imap(name, user), type: 'pop3', port: server.ports.pop3s });

    test('create IMAP and POP3 sessions: counts match, new mail shows over IMAP, close logs out', async (t) => {
      const { app } = await build(t);
      const user = 'counts@example.test';
      await server.deliver(user, mail('one'));
      await server.deliver(user, mail('two'));
      const i = await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('c-imap', user) });
      assert.equal(i.statusCode, 201, i.body);
      assert.deepEqual({ messages: i.json().mailbox.messages, unseen: i.json().mailbox.unseen }, { messages: 2, unseen: 2 });
      const p = await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop3('c-pop3', user) });
      assert.equal(p.statusCode, 201, p.body);
      assert.equal(p.json().mailbox.messages, 2);
      assert.ok(p.json().mailbox.size > 0);
      await server.deliver(user, mail('three'));
      const live = await app.inject({ method: 'GET', url: '/v1/sessions/c-imap?refresh=true' });
      assert.equal(live.json().mailbox.messages, 3, live.body);
      for (const name of ['c-imap', 'c-pop3']) assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/${name}` })).statusCode, 204);
      await server.waitForLog(patterns.imapLogin(user));
      await server.waitForLog(patterns.pop3Login(user));
    });

    test('a wrong password is MAIL_AUTH_FAILED over IMAP and POP3, and nothing is kept', async (t) => {
      const { app } = await build(t);
      const user = 'wrong@example.test';
      const before = await server.countLog(patterns.badLogin(user));
      for (const body of [imap('w-imap', user), pop3('w-pop3', user)]) {
        assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...body, password: 'Not-The-Password-7' } }), 'MAIL_AUTH_FAILED');
      }
      await server.waitForLog(patterns.badLogin(user), before + 2, 15_000);
      assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions.length, 0);
    });

    test('a server restart: IMAP and POP3 sessions go to reconnecting and come back by themselves', async (t) => {
      const { app } = await build(t, FAST);
      const user = 'restart@example.test';
      for (const body of [imap('r-imap', user), pop3('r-pop3', user)]) {
        const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body });
        assert.equal(res.statusCode, 201, res.body);
      }
      await server.stop();
      try {
        // POP3 connects per use: its next check (after the server's LOGIN-DELAY, if any) finds the server gone
        for (const name of ['r-imap', 'r-pop3']) {
          const s = await waitFor(app, name, (v) => v.state === 'reconnecting', 30_000);
          assert.ok(s.lastError, 'the last error is shown');
        }
      } finally {
        await server.start();
      }
      for (const name of ['r-imap', 'r-pop3']) await waitFor(app, name, (v) => v.state === 'connected', 30_000);
      assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions' })).json().sessions.length, 2, 'no session lost');
    });
  });
}

/**
 * `enforced`: the server refuses a login within its LOGIN-DELAY (Cyrus); Courier only advertises it, so
 * there the time after the delay is tested too (10 s; Cyrus's minute is too long for a test).
 */
function loginDelay(label: string, start: () => Promise<Server>, patterns: Patterns, opts: { loginDelayEnforced: boolean }) {
  describe(`${label}: POP3 LOGIN-DELAY`, () => {
    let server: Server;
    before(async () => {
      server = await start();
    });
    after(() => server?.close());
    const pop3 = (name: string, user: string) => ({
      name, type: 'pop3', host: '127.0.0.1', port: server.ports.pop3s, secure: true, username: user, password: USERS[user], tls: { ca: server.caPem },
    });

    test(`a refresh within the advertised LOGIN-DELAY answers the last summary and logs in no more${opts.loginDelayEnforced ? '; another client within it gets 503 with Retry-After' : ''}`, async (t) => {
      const { app } = await build(t, { ...FAST, MSB_SUMMARY_MAX_AGE_MS: '0' });
      const user = 'delay@example.test';
      await server.deliver(user, mail('one'));
      const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop3('d-pop3', user) });
      assert.equal(created.statusCode, 201, created.body);
      const first = created.json().mailbox;
      await server.deliver(user, mail('two'));
      await sleep(700); // two check periods
      for (let i = 0; i < 3; i++) {
        const res = await app.inject({ method: 'GET', url: '/v1/sessions/d-pop3?refresh=true' });
        assert.equal(res.json().state, 'connected', res.body);
        assert.equal(res.json().mailbox.checkedAt, first.checkedAt);
        assert.equal(res.json().mailbox.messages, 1, 'the summary of the one login');
      }
      await sleep(300); // the server writes its log line as the connection ends
      assert.equal(await server.countLog(patterns.pop3Login(user)), 1, 'one login');
      if (opts.loginDelayEnforced) {
        assert.equal(await server.countLog(cyrusLogPatterns.loginDelay), 0, 'the server never had to refuse a login');
        // another client of the same mailbox within the delay: the server refuses, the answer says when to retry
        const other = await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop3('d-other', user) });
        const problem = assertProblem(other, 'MAIL_TEMPORARILY_UNAVAILABLE');
        assert.equal(other.headers['retry-after'], String(server.loginDelaySeconds));
        assert.match(String(problem.detail), /LOGIN-DELAY/);
      }
    });

    if (!opts.loginDelayEnforced) {
      test('once the advertised LOGIN-DELAY has passed, a refresh logs in again and sees new mail', async (t) => {
        const { app } = await build(t, { ...FAST, MSB_CHECK_INTERVAL_MS: '0', MSB_SUMMARY_MAX_AGE_MS: '0' });
        const user = 'delay2@example.test';
        const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: pop3('d2-pop3', user) });
        assert.equal(created.statusCode, 201, created.body);
        await server.deliver(user, mail('new'));
        await sleep(server.loginDelaySeconds * 1000 + 300);
        const res = await app.inject({ method: 'GET', url: '/v1/sessions/d2-pop3?refresh=true' });
        assert.equal(res.json().mailbox.messages, created.json().mailbox.messages + 1, res.body);
        assert.notEqual(res.json().mailbox.checkedAt, created.json().mailbox.checkedAt);
        await server.waitForLog(patterns.pop3Login(user), 2);
      });
    }
  });
}

// Cyrus with popminpoll 0 for the basics, so a restart is noticed at once; Debian's popminpoll 1 where it is the subject
basics('Cyrus IMAP 3.6', () => startCyrus({ users: USERS, popMinPollMinutes: 0 }) as Promise<Server>, cyrusLogPatterns);
loginDelay('Cyrus IMAP 3.6 (Debian popminpoll: 1)', () => startCyrus({ users: USERS }) as Promise<Server>, cyrusLogPatterns, { loginDelayEnforced: true });
basics('Courier 5.0', () => startCourier({ users: USERS }) as Promise<Server>, courierLogPatterns);
loginDelay('Courier 5.0', () => startCourier({ users: USERS }) as Promise<Server>, courierLogPatterns, { loginDelayEnforced: false });

describe('Cyrus IMAP 3.6 that refuses cleartext logins (allowplaintext: no)', () => {
  let cyrus: CyrusServer;
  before(async () => {
    cyrus = await startCyrus({ users: USERS, allowPlaintext: false });
  });
  after(() => cyrus?.close());

  test('IMAP without TLS: MAIL_TLS_REQUIRED and no login attempt reaches the server; with STARTTLS: connected', async (t) => {
    const { app } = await build(t);
    const user = 'counts@example.test';
    const body = { name: 'clear', type: 'imap', host: '127.0.0.1', port: cyrus.ports.imap, secure: false, username: user, password: USERS[user], tls: { starttls: 'off' } };
    const problem = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body }), 'MAIL_TLS_REQUIRED');
    assert.match(String(problem.detail), /LOGINDISABLED/);
    assert.equal(await cyrus.countLog(cyrusLogPatterns.badLogin(user)), 0, 'no refused login in the server log');
    assert.equal(await cyrus.countLog(cyrusLogPatterns.imapLogin(user)), 0, 'no login in the server log');
    const upgraded = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { ...body, name: 'upgraded', tls: { starttls: 'required', ca: cyrus.caPem } } });
    assert.equal(upgraded.statusCode, 201, upgraded.body);
    assert.equal(upgraded.json().tls.mode, 'starttls-required');
  });
});
