import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashApiKey } from '../../src/security/api-keys.js';
import { build } from '../helper.js';
import { assertProblem } from '../problem-assert.js';
import { defaultUsers, startDovecot, type DovecotServer } from '../harness/dovecot.js';
import { startSilentServer, type SilentServer } from '../harness/tcp-tools.js';

const KEYS = { a: 'quota-key-bot-a-0123456789abcdef', b: 'quota-key-bot-b-0123456789abcdef' };
const AUTH = { MSB_AUTH: 'keys', MSB_API_KEYS: `bot-a:bot:${hashApiKey(KEYS.a)},bot-b:bot:${hashApiKey(KEYS.b)}` };
const as = (key: string) => ({ authorization: `Bearer ${key}` });
const USER = 'alice@example.test';

describe('per-principal limits: one bot cannot take every slot', () => {
  let dovecot: DovecotServer;
  let silent: SilentServer;
  before(async () => {
    dovecot = await startDovecot();
    silent = await startSilentServer();
  });
  after(async () => {
    await dovecot?.close();
    await silent?.close();
  });
  const imap = (name: string) => ({ name, type: 'imap', host: '127.0.0.1', port: dovecot.ports.imaps, username: USER, password: defaultUsers[USER], tls: { ca: dovecot.caPem } });
  /** A create that waits on a server that accepts and never greets: a session stuck in connecting. */
  const stuck = (name: string) => ({ name, type: 'imap', host: '127.0.0.1', port: silent.port, secure: false, tls: { starttls: 'off' }, username: 'u', password: 'p', timeouts: { connectMs: 5000 } });

  test('MSB_MAX_SESSIONS_PER_PRINCIPAL: the next create is SESSION_QUOTA_EXCEEDED naming the limit; other bots are not affected', async (t) => {
    const { app } = await build(t, { ...AUTH, MSB_MAX_SESSIONS: '10', MSB_MAX_SESSIONS_PER_PRINCIPAL: '2' });
    for (const name of ['one', 'two']) {
      const res = await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap(name), headers: as(KEYS.a) });
      assert.equal(res.statusCode, 201, res.body);
    }
    const over = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('three'), headers: as(KEYS.a) }), 'SESSION_QUOTA_EXCEEDED');
    assert.match(String(over.detail), /MSB_MAX_SESSIONS_PER_PRINCIPAL/);
    assert.match(String(over.detail), /"bot-a" holds its maximum of 2 sessions/);
    // the same name and settings again is the existing session, not a new one
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('two'), headers: as(KEYS.a) })).statusCode, 200);
    // another principal still gets its own sessions
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('one'), headers: as(KEYS.b) })).statusCode, 201);
    // closing one frees a slot
    assert.equal((await app.inject({ method: 'DELETE', url: '/v1/sessions/one', headers: as(KEYS.a) })).statusCode, 204);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('three'), headers: as(KEYS.a) })).statusCode, 201);
  });

  test('MSB_MAX_CONNECTING_PER_PRINCIPAL: creates stuck on a silent server do not lock anyone else out', { timeout: 120_000 }, async (t) => {
    const { app } = await build(t, { ...AUTH, MSB_MAX_SESSIONS: '10', MSB_MAX_CONNECTING_PER_PRINCIPAL: '2' });
    const acceptedBefore = silent.accepted();
    const hanging = ['s1', 's2'].map((name) => app.inject({ method: 'POST', url: '/v1/sessions', payload: stuck(name), headers: as(KEYS.a) }));
    // both are connecting once the silent server saw both connections
    for (let i = 0; i < 400 && silent.accepted() < acceptedBefore + 2; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(silent.accepted(), acceptedBefore + 2);
    const listed = (await app.inject({ method: 'GET', url: '/v1/sessions', headers: as(KEYS.a) })).json() as { sessions: { state: string }[] };
    assert.deepEqual(listed.sessions.map((s) => s.state), ['connecting', 'connecting']);

    const third = assertProblem(await app.inject({ method: 'POST', url: '/v1/sessions', payload: stuck('s3'), headers: as(KEYS.a) }), 'SESSION_QUOTA_EXCEEDED');
    assert.match(String(third.detail), /MSB_MAX_CONNECTING_PER_PRINCIPAL/);
    assert.ok(Number(third.retryAfterSeconds) > 0);
    // another bot is not affected
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('fine'), headers: as(KEYS.b) })).statusCode, 201);

    // once the stuck creates ended (their connect timeout), the bot may connect again
    for (const res of await Promise.all(hanging)) assertProblem(res, 'MAIL_TIMEOUT');
    assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', payload: imap('after'), headers: as(KEYS.a) })).statusCode, 201);
  });
});
