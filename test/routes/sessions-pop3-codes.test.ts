import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import type { App } from '../../src/app.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { startFakePop3, type FakePop3Options, type FakeServer } from '../harness/fake-mail-servers.js';

/**
 * POP3 response codes (RFC 2449 8, RFC 3206) and LOGIN-DELAY, against a scripted POP3 server speaking to
 * the real node-pop3. [LOGIN-DELAY], [IN-USE] and [SYS/TEMP] are temporary: a create answers 503 and a
 * held session retries; [AUTH] is the credentials and [SYS/PERM] is for good. A server's advertised
 * LOGIN-DELAY is respected: no login sooner than it allows, the last summary answering meanwhile.
 * (tests/routes/interop-debian.test.ts has the same against Cyrus and Courier.)
 */
const FAST = { MSB_CHECK_INTERVAL_MS: '100', MSB_RECONNECT_BASE_MS: '50', MSB_RECONNECT_MAX_MS: '200', MSB_CONNECT_TIMEOUT_MS: '3000', MSB_COMMAND_TIMEOUT_MS: '3000' };

const servers: FakeServer[] = [];
after(async () => {
  for (const s of servers) await s.close();
});

async function pop3(options: FakePop3Options): Promise<FakeServer> {
  const server = await startFakePop3(options);
  servers.push(server);
  return server;
}

const body = (name: string, port: number) => ({
  name, type: 'pop3', host: '127.0.0.1', port, secure: false, tls: { starttls: 'off' }, username: 'bot@example.test', password: 'Pop3-Pw-8d2e',
});

/** PASS commands the server got, over all connections. */
const logins = (s: FakeServer) => s.received.flat().filter((l) => l.startsWith('PASS ')).length;

async function waitFor(app: App, name: string, predicate: (s: Record<string, any>) => boolean, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/v1/sessions/${name}` });
    last = res.json();
    if (res.statusCode === 200 && predicate(res.json())) return res.json();
    await sleep(25);
  }
  assert.fail(`session ${name} never reached the expected state; last: ${JSON.stringify(last)}`);
}

describe('POP3 response codes and LOGIN-DELAY', () => {
  for (const code of ['LOGIN-DELAY', 'IN-USE', 'SYS/TEMP']) {
    test(`-ERR [${code}] at login: 503 MAIL_TEMPORARILY_UNAVAILABLE on create, not a wrong password`, async (t) => {
      const server = await pop3({ pass: () => `-ERR [${code}] not now` });
      const { app } = await build(t, FAST);
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('temp', server.port) });
      const problem = assertProblem(res, 'MAIL_TEMPORARILY_UNAVAILABLE');
      if (code === 'LOGIN-DELAY') {
        // the server never said its delay: a minute, the unit Cyrus counts in
        assert.equal(problem.retryAfterSeconds, 60);
        assert.equal(res.headers['retry-after'], '60');
      }
      assert.match(String(problem.detail), new RegExp(`\\[${code}\\]`));
    });
  }

  test('-ERR [AUTH] is MAIL_AUTH_FAILED and -ERR [SYS/PERM] is MAIL_PERMANENTLY_UNAVAILABLE', async (t) => {
    const { app } = await build(t, FAST);
    const auth = await pop3({ pass: () => '-ERR [AUTH] authentication failed' });
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('auth', auth.port) }), 'MAIL_AUTH_FAILED');
    const perm = await pop3({ pass: () => '-ERR [SYS/PERM] mailbox is corrupt, call your administrator' });
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('perm', perm.port) }), 'MAIL_PERMANENTLY_UNAVAILABLE');
    const plain = await pop3({ pass: () => '-ERR no' });
    assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('plain', plain.port) }), 'MAIL_AUTH_FAILED');
  });

  test('a held session whose login meets [IN-USE] or [SYS/TEMP] retries and comes back; [SYS/PERM] fails it', async (t) => {
    const { app } = await build(t, FAST);
    let answer = '+OK welcome';
    const server = await pop3({ pass: () => answer });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('held', server.port) })).statusCode, 201);
    for (const code of ['IN-USE', 'SYS/TEMP']) {
      answer = `-ERR [${code}] busy`;
      const lost = await waitFor(app, 'held', (s) => s.state === 'reconnecting' && s.lastError?.code === 'MAIL_TEMPORARILY_UNAVAILABLE');
      assert.match(lost.lastError.message, new RegExp(code));
      await waitFor(app, 'held', (s) => s.state === 'reconnecting' && s.reconnect?.attempt >= 2);
      answer = '+OK welcome';
      await waitFor(app, 'held', (s) => s.state === 'connected');
    }
    answer = '-ERR [SYS/PERM] gone for good';
    const failed = await waitFor(app, 'held', (s) => s.state === 'failed');
    assert.equal(failed.lastError.code, 'MAIL_PERMANENTLY_UNAVAILABLE');
  });

  test('a [LOGIN-DELAY] refusal of a held session waits at least the delay the server asks for (a minute when it never said) before the next attempt', async (t) => {
    const { app } = await build(t, FAST);
    let answer = '+OK welcome';
    // LOGIN-DELAY 0 in CAPA: no delay of our own, so the check logs in and meets the server's refusal
    const server = await pop3({ pass: () => answer, capa: ['USER', 'RESP-CODES', 'LOGIN-DELAY 0'] });
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('delayed', server.port) })).statusCode, 201);
    answer = '-ERR [LOGIN-DELAY] wait';
    const lost = await waitFor(app, 'delayed', (s) => s.state === 'reconnecting' && s.lastError?.code === 'MAIL_TEMPORARILY_UNAVAILABLE');
    const waitMs = Date.parse(lost.reconnect.nextAttemptAt) - Date.parse(lost.lastError.at);
    assert.ok(waitMs >= 59_000, `the next attempt is planned ${waitMs} ms after the refusal, not after the server's delay`);
    const res = await app.inject({ method: 'GET', url: '/v1/sessions/delayed?refresh=true' });
    assertProblem(res, 'SESSION_RECONNECTING');
  });

  test('CAPA LOGIN-DELAY: no login sooner than allowed; a refresh meanwhile answers the last summary with its checkedAt', async (t) => {
    const { app } = await build(t, { ...FAST, MSB_SUMMARY_MAX_AGE_MS: '0' });
    const server = await pop3({ loginDelaySeconds: 3600, messages: 4, size: 900 });
    const created = await app.inject({ method: 'POST', url: '/v1/sessions', payload: body('slow', server.port) });
    assert.equal(created.statusCode, 201, created.body);
    const first = created.json().mailbox;
    assert.deepEqual({ messages: first.messages, size: first.size }, { messages: 4, size: 900 });
    assert.equal(logins(server), 1);
    await sleep(400); // several check periods (MSB_CHECK_INTERVAL_MS=100)
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ method: 'GET', url: '/v1/sessions/slow?refresh=true' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.json().state, 'connected');
      assert.equal(res.json().mailbox.checkedAt, first.checkedAt, 'the summary of the one login');
    }
    assert.equal(logins(server), 1, 'no second login within the LOGIN-DELAY');
  });
});
